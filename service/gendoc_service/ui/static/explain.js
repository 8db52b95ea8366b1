// RFC 9457 problems from the API, said in a template author's words. Pure:
// returns {title, lines, context, contextLine}; the page shows each as text.

const SLUG = "https://gendoc.io/problems/";

const PART_NAMES = {
  body: "the main text",
  header: "a page header",
  footer: "a page footer",
  footnotes: "the footnotes",
  properties: "the document properties (File > Properties)",
};

export function slugOf(problem) {
  const type = (problem && problem.type) || "";
  return type.startsWith(SLUG) ? type.slice(SLUG.length) : type;
}

export function explain(problem, status) {
  const slug = slugOf(problem);
  const detail = (problem && problem.detail) || `The service answered ${status}.`;
  switch (slug) {
    case "template-syntax-error": {
      const where = PART_NAMES[problem.part] || problem.part || "the document";
      const para = problem.paragraph ? `, paragraph ${problem.paragraph}` : "";
      return {
        title: `A tag in ${where} is not written correctly (line ${problem.line}${para})`,
        lines: [
          detail,
          "Check that every {{ has its }}, every {% if %} / {% for %} its {% endif %} / {% endfor %}, " +
            "and that Word did not replace quotes with curly ones.",
        ],
        // The service sends the lines from two before the error to two after it;
        // line n of a part is its paragraph n - 1 (rendering.py).
        context: problem.context || [],
        contextLine: problem.line - 1 - Math.max(problem.line - 3, 0),
        contextStart: Math.max(problem.line - 3, 0),
      };
    }
    case "undefined-variables":
      return {
        title: "The sample data lacks values the template uses",
        lines: [`Add these to the data: ${(problem.variables || []).join(", ")}.`],
        context: [],
      };
    case "template-security-violation":
      return {
        title: "The template tried something not allowed",
        lines: [detail, "Templates may read the data and use filters; they cannot reach " +
          "Python internals such as __class__ or call unsafe functions."],
        context: [],
      };
    case "template-render-error":
      return {
        title: "The template could not be filled with this data",
        lines: [detail, "Often a value has the wrong kind: a text where the template " +
          "expects a list or a number."],
        context: [],
      };
    case "template-include-error":
      return {
        title: "A sub-template cannot be included",
        lines: [detail, (problem.chain || []).length
          ? `Templates involved, outermost first: ${problem.chain.join(" → ")}.` : ""]
          .filter(Boolean),
        context: [],
      };
    case "invalid-format-value":
      return { title: "A value cannot be formatted", lines: [detail], context: [] };
    case "invalid-docx":
      return { title: "This file is not a usable Word template", lines: [detail], context: [] };
    case "invalid-template-name":
      return {
        title: "That name cannot be used",
        lines: ["Use letters, digits, '.', '_' and '-', starting with a letter or digit.",
          detail],
        context: [],
      };
    case "invalid-json":
      return { title: "The data is not valid JSON", lines: [detail], context: [] };
    case "unauthorized":
      return { title: "An API key is needed", lines: ["Enter the API key above."], context: [] };
    case "too-many-requests":
    case "deadline-exceeded":
    case "converter-unavailable":
      return {
        title: "The service is busy",
        lines: [detail, "The preview will try again after your next edit."],
        context: [],
      };
    default:
      return { title: (problem && problem.title) || `Error ${status}`, lines: [detail], context: [] };
  }
}
