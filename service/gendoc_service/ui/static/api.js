// Calls to the service API. The API key lives in sessionStorage (this browser tab's
// session only) and travels in the X-API-Key header: never a cookie, never a URL.

const KEY = "gendoc-api-key";
// The service's root, relative to this file (/ui/api.js): the page keeps working when
// an ingress serves the service under a path prefix.
const ROOT = new URL("../", import.meta.url);

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const out = { ...extra };
  const key = apiKey();
  if (key) out["X-API-Key"] = key;
  return out;
}

export async function call(method, path, { body, type, signal } = {}) {
  const init = { method, headers: headers(type ? { "Content-Type": type } : {}), signal };
  if (body !== undefined) init.body = body;
  const response = await fetch(new URL(path.replace(/^\//, ""), ROOT), init);
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  return response;
}

export async function json(method, path, options) {
  const response = await call(method, path, options);
  return response.status === 204 ? null : response.json();
}

export function templatePath(name, rest = "") {
  return `/v1/templates/${encodeURIComponent(name)}${rest}`;
}
