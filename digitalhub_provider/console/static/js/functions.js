// Functions: list (filters, 5 latest versions per row), detail (summary, runs, versions, inspector,
// export, edit, delete), create and edit forms. A spec change saves a new version (a new id, same name).
import { api, ApiError, FUNCTION_KINDS, fromBase64, NAME_RE, PYTHON_VERSIONS, toBase64, uuid4 } from "./api.js";
import {
  clearErrors, dialog, download, facts, field, fmtDate, h, json, setFieldError, short, showApiError, toYaml,
} from "./dom.js";
import { go, links, withQuery } from "./nav.js";
import { runsTable } from "./runs.js";

const PAGE_SIZE = 20;

export async function functionsList(ctx) {
  const [project] = ctx.params;
  const name = ctx.query.get("name") || "";
  const kind = ctx.query.get("kind") || "";
  const pageNo = Number(ctx.query.get("page") || 0);
  ctx.crumbs(project, [["Functions"]]);
  ctx.title(`Functions · ${project}`);
  const page = await api.list(project, "functions", { name, kind, page: pageNo, size: PAGE_SIZE });
  const base = `/projects/${encodeURIComponent(project)}/functions`;

  const nameInput = h("input", { name: "name", value: name, autocomplete: "off" });
  const kindSelect = h("select", { name: "kind" }, h("option", { value: "" }, "any"),
    FUNCTION_KINDS.map((k) => h("option", { value: k, selected: k === kind }, k)));
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter functions" },
    field("Name", nameInput), field("Kind", kindSelect), h("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    go(withQuery(base, { name: nameInput.value.trim(), kind: kindSelect.value }));
  });

  const rows = [];
  for (const fn of page.content) {
    const versionsRow = h("tr", { class: "versions-row", hidden: true }, h("td", { colspan: 6 }));
    const toggle = h("button", { type: "button", class: "icon", "aria-expanded": "false", "aria-label": `Show the latest versions of ${fn.name}` }, "▸");
    toggle.addEventListener("click", async () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "▾" : "▸";
      versionsRow.hidden = !open;
      if (open) {
        const versions = await api.list(project, "functions", { name: fn.name, versions: "all", size: 5 });
        versionsRow.firstChild.replaceChildren(h("ul", { class: "versions-inline" },
          versions.content.map((v) => h("li", {}, h("a", { href: links.fn(project, v.name, v.id) }, short(v.id)), " ", fmtDate(v.metadata?.updated)))));
      }
    });
    rows.push(h("tr", { "data-function": fn.name },
      h("td", {}, toggle),
      h("td", {}, h("a", { href: links.fn(project, fn.name, fn.id) }, fn.name)),
      h("td", {}, fn.kind),
      h("td", {}, short(fn.id)),
      h("td", {}, fmtDate(fn.metadata?.updated)),
      h("td", {}, h("a", { href: links.fn(project, fn.name, fn.id), class: "button" }, "Show"))));
    rows.push(versionsRow);
  }
  return h("section", { "data-page": "functions" },
    h("div", { class: "title-row" }, h("h1", {}, "Functions"),
      h("a", { class: "button primary", href: `#${base}/new` }, "Create")),
    filters,
    page.content.length
      ? h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["", "Name", "Kind", "Version", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, name || kind ? "No function matches these filters." : "No functions yet."),
    pager(page, (n) => withQuery(base, { name, kind, page: n })));
}

export function pager(page, hrefOf) {
  if (page.totalPages <= 1) return null;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    page.number > 0 ? h("a", { href: `#${hrefOf(page.number - 1)}`, rel: "prev" }, "Previous") : null,
    h("span", {}, `Page ${page.number + 1} of ${page.totalPages} (${page.totalElements})`),
    page.number + 1 < page.totalPages ? h("a", { href: `#${hrefOf(page.number + 1)}`, rel: "next" }, "Next") : null);
}

export async function functionLatest(ctx) {
  const [project, name] = ctx.params;
  const page = await api.list(project, "functions", { name, size: 1 });
  if (!page.content.length) throw new ApiError(404, `No such EntityName: function ${name}`);
  go(`/projects/${encodeURIComponent(project)}/functions/${encodeURIComponent(name)}/${encodeURIComponent(page.content[0].id)}`);
  return h("p", {}, "Opening the latest version…");
}

/** The function's code, as text (DigitalHub Core's SDK nests it under spec.source). */
export function codeOf(spec) {
  const source = spec.source && typeof spec.source === "object" ? spec.source : {};
  const b64 = source.base64 || spec.base64;
  if (b64) {
    try {
      return fromBase64(b64);
    } catch {
      return "";
    }
  }
  return source.code || spec.code || "";
}

function handlerOf(spec) {
  return (spec.source && spec.source.handler) || spec.handler || "";
}

export async function functionDetail(ctx) {
  const [project, name, id] = ctx.params;
  const fn = await api.get(project, "functions", id);
  if (fn.name !== name) throw new ApiError(404, `No such EntityName: function ${name}:${id}`);
  const versions = await api.list(project, "functions", { name, versions: "all", size: 100 });
  const runs = await api.list(project, "runs", { function: `${fn.kind}://${project}/${name}:${id}`, size: 10 });
  ctx.crumbs(project, [["Functions", links.functions(project)], [name]]);
  ctx.title(`${name} · functions`);
  const spec = fn.spec || {};
  const code = codeOf(spec);

  const summary = h("div", { id: "tab-summary", role: "tabpanel", "aria-labelledby": "tab-summary-button" },
    facts([
      ["Name", fn.name], ["Kind", fn.kind], ["Version", fn.id], ["Key", fn.key],
      ["Description", fn.metadata?.description], ["Labels", (fn.metadata?.labels || []).join(", ")],
      ["Created", fmtDate(fn.metadata?.created)], ["Updated", fmtDate(fn.metadata?.updated)],
      ["Python version", spec.python_version], ["Handler", handlerOf(spec)], ["Image", spec.image],
      ["Requirements", (spec.requirements || []).join(", ")],
    ]),
    code ? [h("h3", {}, "Code"), h("pre", { class: "code", "data-testid": "code" }, code)] : null);
  const runsFilter = withQuery(`/projects/${encodeURIComponent(project)}/runs`, { function: `${fn.kind}://${project}/${name}` });
  const runsPanel = h("div", { id: "tab-runs", role: "tabpanel", "aria-labelledby": "tab-runs-button", hidden: true },
    runs.content.length ? runsTable(project, runs.content) : h("p", { class: "muted" }, "No runs of this version."),
    h("p", {}, h("a", { href: `#${runsFilter}` }, "All runs of this function"), " · ",
      h("a", { class: "button", href: `${links.fn(project, name, id)}/run` }, "New run")));
  const tabs = tabbed([["Summary", summary], [`Runs (${runs.totalElements})`, runsPanel, "runs"]]);

  const side = h("aside", { class: "versions", "aria-label": "Versions" }, h("h2", {}, "Versions"),
    h("ol", {}, versions.content.map((v) => h("li", {},
      h("a", { href: links.fn(project, name, v.id), "aria-current": v.id === id ? "true" : false, class: v.id === id ? "current" : "" },
        short(v.id), h("span", { class: "muted" }, ` ${fmtDate(v.metadata?.created)}`))))));

  const actions = h("div", { class: "actions" },
    h("button", { type: "button", onclick: () => dialog("Inspector", json(fn)) }, "Inspector"),
    h("button", { type: "button", onclick: () => download(`function-${fn.name}-${fn.id}.yaml`, toYaml(fn)) }, "Export"),
    h("a", { class: "button", href: `${links.fn(project, name, id)}/edit` }, "Edit"),
    h("a", { class: "button", href: `${links.fn(project, name, id)}/run` }, "New run"),
    h("button", { type: "button", class: "danger", onclick: () => confirmDelete(project, "functions", fn, versions.totalElements) }, "Delete"));
  return h("section", { "data-page": "function", class: "with-side" },
    h("div", { class: "body" }, h("div", { class: "title-row" }, h("h1", {}, name), actions), tabs),
    side);
}

/** Tabs (a tablist of buttons over panels): [[label, panel, id?], ...]; the first one shown. */
export function tabbed(items) {
  const buttons = items.map(([label, panel, id], i) => {
    const key = id || label.toLowerCase();
    const button = h("button", { type: "button", role: "tab", id: `tab-${key}-button`, "aria-selected": String(i === 0), "aria-controls": panel.id }, label);
    button.addEventListener("click", () => {
      buttons.forEach((b, j) => {
        b.setAttribute("aria-selected", String(i === j));
        items[j][1].hidden = i !== j;
      });
    });
    return button;
  });
  return h("div", { class: "tabs" }, h("div", { role: "tablist" }, buttons), items.map(([, panel]) => panel));
}

/** DELETE after a confirmation: this version, or every version (cascade: their tasks and runs too). */
export async function confirmDelete(project, plural, entity, versionCount) {
  const one = h("input", { type: "radio", name: "what", value: "one", checked: true, id: "delete-one" });
  const all = h("input", { type: "radio", name: "what", value: "all", id: "delete-all" });
  const cascade = h("input", { type: "checkbox", name: "cascade", id: "delete-cascade", checked: true });
  const body = h("div", {},
    h("p", {}, `Delete ${entity.name}?`),
    h("fieldset", {}, h("legend", {}, "What"),
      h("div", {}, one, h("label", { for: "delete-one" }, `This version (${short(entity.id)})`)),
      h("div", {}, all, h("label", { for: "delete-all" }, `All ${versionCount} versions of ${entity.name}`))),
    plural === "functions" || plural === "workflows"
      ? h("div", {}, cascade, h("label", { for: "delete-cascade" }, "Also delete their tasks and runs (cascade)"))
      : null);
  const answer = await dialog("Delete", body, [["Cancel", "cancel"], ["Delete", "delete", "danger"]]);
  if (answer !== "delete") return;
  try {
    if (all.checked) await api.removeAll(project, plural, entity.name, cascade.checked);
    else await api.remove(project, plural, entity.id, cascade.checked);
  } catch (err) {
    await dialog("Not deleted", h("p", {}, err.message));
    return;
  }
  if (plural === "functions") go(all.checked ? `/projects/${encodeURIComponent(project)}/functions` : `/projects/${encodeURIComponent(project)}/functions/${encodeURIComponent(entity.name)}`);
  else go(`/projects/${encodeURIComponent(project)}/${plural}`);
}

// -- create and edit ------------------------------------------------------------------------------------
function specFields(kind, spec) {
  const code = h("textarea", { name: "code", rows: 10, spellcheck: "false", class: "code", value: codeOf(spec) });
  const handler = h("input", { name: "handler", value: handlerOf(spec), autocomplete: "off" });
  const requirements = h("textarea", { name: "requirements", rows: 3, value: (spec.requirements || []).join("\n") });
  const fields = [];
  if (kind === "python") {
    const version = h("select", { name: "python_version", required: true },
      h("option", { value: "" }, "choose…"),
      PYTHON_VERSIONS.map((v) => h("option", { value: v, selected: v === (spec.python_version || "PYTHON3_11") }, v)));
    fields.push(field("Python version", version));
  }
  fields.push(field("Code", code, "The handler's module (Python)."), field("Handler", handler, "The function to call."),
    field("Requirements", requirements, "One pip requirement a line."));
  if (kind === "mlrun") {
    fields.push(field("Image", h("input", { name: "image", value: spec.image || "", autocomplete: "off" })),
      field("Tag", h("input", { name: "tag", value: spec.tag || "", autocomplete: "off" })));
  }
  return fields;
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter(Boolean);
}

/** The spec the form describes, in DigitalHub Core's form (code under source, base64). */
function specOf(form, kind, old) {
  const v = (name) => form.elements[name]?.value ?? "";
  const spec = { ...(old || {}) };
  delete spec.code;
  delete spec.base64;
  delete spec.handler;
  const code = v("code");
  const handler = v("handler").trim();
  if (kind === "python") {
    spec.python_version = v("python_version");
    spec.source = { ...(code ? { base64: toBase64(code) } : {}), ...(handler ? { handler } : {}), lang: "python" };
  } else {
    spec.source = { ...(code ? { base64: toBase64(code) } : {}), lang: "python" };
    if (handler) spec.handler = handler;
    else delete spec.handler;
    for (const name of ["image", "tag"]) {
      if (v(name).trim()) spec[name] = v(name).trim();
      else delete spec[name];
    }
  }
  const reqs = lines(v("requirements"));
  if (reqs.length) spec.requirements = reqs;
  else delete spec.requirements;
  return spec;
}

function validate(form, kind) {
  let ok = true;
  const fail = (name, message) => {
    setFieldError(form, name, message);
    ok = false;
  };
  const name = form.elements.name.value.trim();
  if (!name) fail("name", "A function needs a name.");
  else if (!NAME_RE.test(name)) fail("name", "Letters, digits, '.', '_', '+' or '-', starting with a letter or digit.");
  if (kind === "python" && !form.elements.python_version.value) fail("python_version", "Choose a Python version.");
  if (form.elements.code.value.trim() && !form.elements.handler.value.trim()) fail("handler", "Code needs a handler to call.");
  return ok;
}

const stable = (value) => JSON.stringify(value, (k, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v));
const ALIASES = { code_src: "code", base64: "code", "source.base64": "code", "source.handler": "handler" };

function functionForm(ctx, project, existing) {
  const editing = Boolean(existing);
  const nameInput = h("input", { name: "name", required: true, autocomplete: "off", value: existing?.name || "", disabled: editing });
  const kindSelect = h("select", { name: "kind", disabled: editing },
    FUNCTION_KINDS.map((k) => h("option", { value: k, selected: k === (existing?.kind || "python") }, k)));
  const description = h("input", { name: "description", value: existing?.metadata?.description || "", autocomplete: "off" });
  const labels = h("input", { name: "labels", value: (existing?.metadata?.labels || []).join(", "), autocomplete: "off" });
  const specBox = h("fieldset", { class: "spec" }, h("legend", {}, "Spec"));
  const showSpec = () => specBox.replaceChildren(h("legend", {}, `Spec (${kindSelect.value})`), ...specFields(kindSelect.value, existing?.spec || {}));
  kindSelect.addEventListener("change", showSpec);
  showSpec();
  const form = h("form", { class: "entity-form", novalidate: true, "aria-label": editing ? "Edit function" : "New function" },
    h("p", { class: "form-error", role: "alert" }),
    field("Name", nameInput, editing ? "A function's name does not change." : null),
    field("Kind", kindSelect, editing ? "A function's kind does not change." : null),
    h("fieldset", {}, h("legend", {}, "Metadata"), field("Description", description), field("Labels", labels, "Comma separated.")),
    specBox,
    h("div", { class: "buttons" },
      h("a", { class: "button", href: editing ? links.fn(project, existing.name, existing.id) : links.functions(project) }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const kind = kindSelect.value;
    if (!validate(form, kind)) return;
    const name = nameInput.value.trim();
    const spec = specOf(form, kind, existing?.spec);
    const metadata = { ...(existing?.metadata || {}), name, project };
    metadata.description = description.value.trim() || undefined;
    const labelList = labels.value.split(",").map((s) => s.trim()).filter(Boolean);
    metadata.labels = labelList.length ? labelList : undefined;
    try {
      let saved;
      if (editing && stable(spec) === stable(existing.spec)) {
        saved = await api.update(project, "functions", existing.id, { ...existing, metadata, spec });
      } else {
        const id = uuid4();
        delete metadata.version;
        delete metadata.created;
        delete metadata.updated;
        saved = await api.create(project, "functions", { id, name, kind, project, metadata: { ...metadata, version: id }, spec, status: { state: "CREATED" } });
      }
      go(`/projects/${encodeURIComponent(project)}/functions/${encodeURIComponent(saved.name)}/${encodeURIComponent(saved.id)}`);
    } catch (err) {
      showApiError(form, err, ALIASES);
    }
  });
  return form;
}

export async function functionCreate(ctx) {
  const [project] = ctx.params;
  await api.project(project);
  ctx.crumbs(project, [["Functions", links.functions(project)], ["New"]]);
  ctx.title("New function");
  return h("section", { "data-page": "function-create" }, h("h1", {}, "New function"), functionForm(ctx, project, null));
}

export async function functionEdit(ctx) {
  const [project, name, id] = ctx.params;
  const fn = await api.get(project, "functions", id);
  ctx.crumbs(project, [["Functions", links.functions(project)], [name, links.fn(project, name, id)], ["Edit"]]);
  ctx.title(`Edit ${name}`);
  return h("section", { "data-page": "function-edit" }, h("h1", {}, `Edit ${name}`),
    h("p", { class: "muted" }, "A change of the spec saves a new version; a change of the metadata only updates this one."),
    functionForm(ctx, project, fn));
}

