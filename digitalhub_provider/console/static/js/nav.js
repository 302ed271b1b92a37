// Links between the console's pages (hash routes).

/** Go to a console route (a hash path, with an optional query: "/projects/p/runs?state=RUNNING"). */
export function go(path) {
  location.hash = `#${path}`;
}

/** A hash path with a query of the non-empty values. */
export function withQuery(path, query) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  return q.toString() ? `${path}?${q}` : path;
}

const enc = encodeURIComponent;
export const links = {
  project: (p) => `#/projects/${enc(p)}`,
  functions: (p) => `#/projects/${enc(p)}/functions`,
  fn: (p, name, id) => `#/projects/${enc(p)}/functions/${enc(name)}${id ? `/${enc(id)}` : ""}`,
  runs: (p) => `#/projects/${enc(p)}/runs`,
  run: (p, id) => `#/projects/${enc(p)}/runs/${enc(id)}`,
  entity: (p, plural, id) => `#/projects/${enc(p)}/${plural}/${enc(id)}`,
};

const PLURAL = { function: "functions", workflow: "workflows", dataitem: "dataitems", artifact: "artifacts", model: "models", run: "runs" };

/** The console's page of the entity a key names, or null. */
export function linkOfKey(key) {
  const m = /^store:\/\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(key || "");
  if (!m) return null;
  const [, project, type, , rest] = m;
  const [name, id] = rest.includes(":") ? rest.split(":", 2) : [rest, null];
  if (type === "function") return links.fn(project, name, id);
  if (type === "run") return links.run(project, rest);
  if (PLURAL[type] && id) return links.entity(project, PLURAL[type], id);
  return null;
}
