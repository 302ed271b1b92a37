// The DigitalHub REST API, as the console uses it: same origin, Airflow's session cookie.
// The console lives at <prefix>/console/js/api.js, the API at <prefix>/api/v1/.
const API = new URL("../../api/v1/", import.meta.url);
const AIRFLOW_API = new URL("/api/v2/", import.meta.url);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(base, method, path, { query, body } = {}) {
  const url = new URL(path, base);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(key, one);
  }
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `The API cannot be reached (${err.message}).`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const detail = data && (data.message || data.detail);
    throw new ApiError(res.status, typeof detail === "string" ? detail : `${res.status} ${res.statusText}`);
  }
  return data;
}

const enc = encodeURIComponent;
const request = (method, path, options) => call(API, method, path, options);

export const api = {
  projects: (query) => request("GET", "projects", { query }),
  project: (name) => request("GET", `projects/${enc(name)}`),
  createProject: (body) => request("POST", "projects", { body }),
  list: (project, type, query) => request("GET", `-/${enc(project)}/${type}`, { query }),
  get: (project, type, id) => request("GET", `-/${enc(project)}/${type}/${enc(id)}`),
  create: (project, type, body) => request("POST", `-/${enc(project)}/${type}`, { body }),
  update: (project, type, id, body) => request("PUT", `-/${enc(project)}/${type}/${enc(id)}`, { body }),
  remove: (project, type, id, cascade) =>
    request("DELETE", `-/${enc(project)}/${type}/${enc(id)}`, { query: { cascade } }),
  removeAll: (project, type, name, cascade) =>
    request("DELETE", `-/${enc(project)}/${type}`, { query: { name, cascade } }),
  /** A dataitem of kind table: {schema: {fields}, rows, total_rows} (this server's extension). */
  preview: (project, id, rows) => request("GET", `-/${enc(project)}/dataitems/${enc(id)}/preview`, { query: { rows } }),
  /** Where a dataitem's, artifact's or model's file downloads from (same origin: the cookie authenticates). */
  downloadUrl: (project, type, id) => new URL(`-/${enc(project)}/${type}/${enc(id)}/files/download`, API).href,
  logs: (project, id) => request("GET", `-/${enc(project)}/runs/${enc(id)}/logs`),
  stop: (project, id) => request("POST", `-/${enc(project)}/runs/${enc(id)}/stop`),
  /** The value of an Airflow task instance's XCom (Airflow's own REST API, same cookie). */
  xcom: (dagId, runId, taskId, mapIndex, key) =>
    call(AIRFLOW_API, "GET", `dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}/xcomEntries/${enc(key)}`,
      { query: { map_index: mapIndex } }),
  /** An Airflow task instance (its state), -1 the map index of one that is not mapped. */
  taskInstance: (dagId, runId, taskId, mapIndex) =>
    call(AIRFLOW_API, "GET", `dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances/${enc(taskId)}${mapIndex >= 0 ? `/${mapIndex}` : ""}`),
};

/** A version 4 UUID (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const FINAL_STATES = ["COMPLETED", "ERROR", "STOPPED"];
export const RUN_STATES = ["CREATED", "BUILT", "READY", "RUNNING", "COMPLETED", "ERROR", "STOPPED"];
// What the console creates; the server knows these kinds (entities/specs/__init__.py).
export const FUNCTION_KINDS = ["python", "mlrun"];
export const TASK_ACTIONS = { python: ["job", "build"], mlrun: ["job", "build"], kfp: ["pipeline"] };
export const PYTHON_VERSIONS = ["PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13"];
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._+-]{0,253}$/;

/** The parts of a key: store://project/type/kind/name:id (versioned), store://project/run/kind/id (not). */
export function parseKey(key) {
  const m = /^store:\/\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(key || "");
  if (!m) return null;
  const [, project, type, kind, rest] = m;
  const versioned = rest.includes(":");
  const [name, id] = versioned ? rest.split(":", 2) : [rest, rest];
  return { project, type, kind, name, id, versioned };
}

/** The (name, id) a run's spec.function points to: python://project/name:id, or a function's key. */
export function functionRef(ref) {
  const key = parseKey(ref);
  if (key) return key.type === "function" || key.type === "workflow" ? { project: key.project, name: key.name, id: key.versioned ? key.id : null, type: key.type } : null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/]+)\/([^/:]+)(?::([^/:]+))?$/.exec(ref || "");
  return m ? { project: m[1], name: m[2], id: m[3] || null, type: "function" } : null;
}

/** Text from base64 (UTF-8), and back. */
export function fromBase64(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

export function toBase64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
