// Workflows, dataitems, artifacts and models: a list and a detail page each (summary, versions, inspector,
// export, delete); a table's first rows and schema; the file of a dataitem, artifact or model to download.
import { api, ApiError } from "./api.js";
import { dialog, download, facts, fmtDate, h, json, short, table, toYaml } from "./dom.js";
import { links, withQuery } from "./nav.js";
import { confirmDelete, pager } from "./functions.js";

const TITLES = { workflows: "Workflows", dataitems: "Dataitems", artifacts: "Artifacts", models: "Models" };
const SINGULAR = { workflows: "workflow", dataitems: "dataitem", artifacts: "artifact", models: "model" };
// The types whose spec.path is a file the API serves (files/download).
const WITH_FILES = new Set(["dataitems", "artifacts", "models"]);
const PREVIEW_ROWS = 20;

export async function entityList(ctx) {
  const [project, plural] = ctx.params;
  const pageNo = Number(ctx.query.get("page") || 0);
  ctx.crumbs(project, [[TITLES[plural]]]);
  ctx.title(`${TITLES[plural]} · ${project}`);
  const page = await api.list(project, plural, { page: pageNo, size: 20 });
  const base = `/projects/${encodeURIComponent(project)}/${plural}`;
  return h("section", { "data-page": plural },
    h("h1", {}, TITLES[plural]),
    page.content.length
      ? table(page.content, [
        ["Name", (e) => h("a", { href: links.entity(project, plural, e.id) }, e.name)],
        ["Kind", (e) => e.kind],
        ["Version", (e) => short(e.id)],
        ["Updated", (e) => fmtDate(e.metadata?.updated)],
      ])
      : h("p", { class: "muted" }, `No ${plural} yet.`),
    pager(page, (n) => withQuery(base, { page: n })));
}

export async function entityDetail(ctx) {
  const [project, plural, id] = ctx.params;
  const entity = await api.get(project, plural, id);
  const versions = await api.list(project, plural, { name: entity.name, versions: "all", size: 100 });
  ctx.crumbs(project, [[TITLES[plural], `#/projects/${encodeURIComponent(project)}/${plural}`], [entity.name]]);
  ctx.title(entity.name);
  const spec = entity.spec || {};
  const preview = plural === "dataitems" && entity.kind === "table" ? await tablePreview(project, entity) : null;
  const actions = h("div", { class: "actions" },
    WITH_FILES.has(plural) && spec.path
      ? h("a", { class: "button", href: api.downloadUrl(project, plural, entity.id), download: "", "data-testid": "download" }, "Download")
      : null,
    h("button", { type: "button", onclick: () => dialog("Inspector", json(entity)) }, "Inspector"),
    h("button", { type: "button", onclick: () => download(`${SINGULAR[plural]}-${entity.name}-${entity.id}.yaml`, toYaml(entity)) }, "Export"),
    h("button", { type: "button", class: "danger", onclick: () => confirmDelete(project, plural, entity, versions.totalElements) }, "Delete"));
  return h("section", { "data-page": SINGULAR[plural], class: "with-side" },
    h("div", { class: "body" },
      h("div", { class: "title-row" }, h("h1", {}, entity.name), actions),
      facts([
        ["Name", entity.name], ["Kind", entity.kind], ["Version", entity.id], ["Key", entity.key],
        ["Path", spec.path], ["Description", entity.metadata?.description],
        ["Created", fmtDate(entity.metadata?.created)], ["Updated", fmtDate(entity.metadata?.updated)],
      ]),
      preview,
      h("h2", {}, "Spec"), json(spec),
      entity.status && Object.keys(entity.status).length ? [h("h2", {}, "Status"), json(entity.status)] : null),
    h("aside", { class: "versions", "aria-label": "Versions" }, h("h2", {}, "Versions"),
      h("ol", {}, versions.content.map((v) => h("li", {},
        h("a", { href: links.entity(project, plural, v.id), "aria-current": v.id === id ? "true" : false, class: v.id === id ? "current" : "" },
          short(v.id), h("span", { class: "muted" }, ` ${fmtDate(v.metadata?.created)}`)))))));
}

/** The schema and first rows of a table (the API's preview); what the API refuses (a file gone from the data
 * store, a file that is not a table) is shown as its message in place of the table. */
async function tablePreview(project, entity) {
  const box = h("section", { class: "preview", "data-testid": "preview", "aria-label": "Preview" }, h("h2", {}, "Preview"));
  let data;
  try {
    data = await api.preview(project, entity.id, PREVIEW_ROWS);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) throw err;
    box.append(h("p", { class: "form-error", "data-testid": "preview-error" }, err.message || String(err)));
    return box;
  }
  const fields = data.schema?.fields || [];
  const total = data.total_rows ?? null;
  box.append(
    h("p", { class: "muted" }, total === null
      ? `The first ${data.rows.length} rows.`
      : `The first ${data.rows.length} of ${total} rows.`),
    h("div", { class: "preview-box" },
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, fields.map((f) =>
          h("th", { scope: "col" }, f.name, h("span", { class: "muted type" }, ` ${f.type}`))))),
        h("tbody", {}, data.rows.map((row) => h("tr", {}, fields.map((f) => h("td", {}, cell(row[f.name])))))))));
  return box;
}

/** A cell's text: nothing for null, JSON for lists and objects. */
function cell(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
