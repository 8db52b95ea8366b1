// The sample-data check, pure: a variable tree (as GET /v1/templates/{name} gives it)
// against data. The same reading as the service's strict mode (variables.py):
//   null      a value used as-is: present is enough, its inside is not judged
//   {...}     attributes read from it
//   [item]    a sequence looped over; each element must look like `item`
// Missing: paths the template reads that the data lacks, spelled as in the data
// (items[1].price). Unknown: data paths the template never reads.

export function treePaths(tree, prefix = "") {
  const out = [];
  for (const [key, child] of Object.entries(tree || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push({ path, kind: kindOf(child) });
    if (Array.isArray(child)) {
      out.push(...itemPaths(child[0], `${path}[]`));
    } else if (isObject(child)) {
      out.push(...treePaths(child, path));
    }
  }
  return out;
}

function itemPaths(item, path) {
  if (Array.isArray(item)) return [{ path, kind: "list" }, ...itemPaths(item[0], `${path}[]`)];
  if (isObject(item)) return treePaths(item, path);
  return [];
}

export function kindOf(node) {
  if (Array.isArray(node)) return "list";
  if (isObject(node)) return "object";
  return "value";
}

export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function checkData(tree, data) {
  const missing = [];
  const unknown = [];
  missingIn(tree || {}, data, "", missing);
  unknownIn(tree || {}, data, "", unknown);
  return { missing, unknown };
}

function join(prefix, key) {
  return prefix ? `${prefix}.${key}` : key;
}

// Every leaf below a missing node: `customer.address.city` says more than `customer`.
function leaves(node, path) {
  if (Array.isArray(node) || !isObject(node) || Object.keys(node).length === 0) return [path];
  return Object.entries(node).flatMap(([k, child]) => leaves(child, join(path, k)));
}

function missingIn(node, value, path, out) {
  if (!isObject(value)) return; // a string or number cannot lack a key: not judged
  for (const [key, child] of Object.entries(node)) {
    const here = join(path, key);
    if (!(key in value)) {
      out.push(...leaves(child, here));
    } else if (Array.isArray(child)) {
      elementsIn(child[0], value[key], here, out);
    } else if (isObject(child)) {
      missingIn(child, value[key], here, out);
    }
  }
}

function elementsIn(item, value, path, out) {
  if (!Array.isArray(value)) return;
  value.forEach((element, i) => {
    if (Array.isArray(item)) elementsIn(item[0], element, `${path}[${i}]`, out);
    else if (isObject(item)) missingIn(item, element, `${path}[${i}]`, out);
  });
}

function unknownIn(node, value, path, out) {
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const here = join(path, key);
    if (!(key in node)) {
      out.push(here);
    } else if (Array.isArray(node[key]) && Array.isArray(child)) {
      child.forEach((element, i) => unknownItem(node[key][0], element, `${here}[${i}]`, out));
    } else if (isObject(node[key])) {
      unknownIn(node[key], child, here, out);
    }
  }
}

function unknownItem(item, value, path, out) {
  if (Array.isArray(item) && Array.isArray(value)) {
    value.forEach((element, i) => unknownItem(item[0], element, `${path}[${i}]`, out));
  } else if (isObject(item)) {
    unknownIn(item, value, path, out);
  }
}

// Data shaped like the tree, every value a placeholder: a start for the editor.
export function skeleton(tree) {
  const out = {};
  for (const [key, child] of Object.entries(tree || {})) out[key] = skeletonOf(child, key);
  return out;
}

function skeletonOf(node, key) {
  if (Array.isArray(node)) return [skeletonOf(node[0], key)];
  if (isObject(node)) return skeleton(node);
  return key;
}

// Missing paths spelled per element (items[0].price) mapped back to tree paths
// (items[].price), so the variable tree can mark what is missing.
export function asTreePath(path) {
  return path.replace(/\[\d+\]/g, "[]");
}
