// Projects: the list (and a new one), a project's dashboard.
import { api, RUN_STATES } from "./api.js";
import { clearErrors, field, fmtDate, h, setFieldError, showApiError, stateBadge, table } from "./dom.js";
import { go, links } from "./nav.js";
import { runsTable } from "./runs.js";

export async function projectsPage(ctx) {
  ctx.crumbs(null, []);
  ctx.title("Projects");
  const page = await api.projects({ size: 200 });
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const description = h("input", { name: "description", autocomplete: "off" });
  const form = h("form", { class: "inline-form", "aria-label": "New project", novalidate: true },
    h("p", { class: "form-error", role: "alert" }),
    field("Name", name, "Lower-case letters, digits and '-'."), field("Description", description),
    h("button", { type: "submit" }, "Create project"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = name.value.trim();
    if (!value) return setFieldError(form, "name", "A project needs a name.");
    const body = { id: value, name: value, kind: "project", metadata: { description: description.value.trim() || undefined }, spec: {} };
    try {
      await api.createProject(body);
      go(`/projects/${encodeURIComponent(value)}`);
    } catch (err) {
      showApiError(form, err);
    }
  });
  return h("section", { "data-page": "projects" },
    h("h1", {}, "Projects"),
    page.content.length
      ? table(page.content, [
        ["Name", (p) => h("a", { href: links.project(p.name) }, p.name)],
        ["Description", (p) => p.metadata?.description || ""],
        ["Created", (p) => fmtDate(p.metadata?.created)],
      ])
      : h("p", { class: "muted" }, "No projects yet."),
    h("h2", {}, "New project"), form);
}

export async function dashboard(ctx) {
  const [project] = ctx.params;
  ctx.crumbs(project, []);
  ctx.title(project);
  const entity = await api.project(project);
  const count = (type, query = {}) => api.list(project, type, { ...query, size: 1 }).then((p) => p.totalElements);
  const [functions, workflows, dataitems, artifacts, models, latest, ...byState] = await Promise.all([
    count("functions"), count("workflows"), count("dataitems"), count("artifacts"), count("models"),
    api.list(project, "runs", { size: 5 }),
    ...RUN_STATES.map((state) => count("runs", { state })),
  ]);
  const card = (title, n, href) => h("a", { class: "card", href }, h("span", { class: "count" }, String(n)), h("span", {}, title));
  return h("section", { "data-page": "dashboard" },
    h("h1", {}, project),
    entity.metadata?.description ? h("p", {}, entity.metadata.description) : null,
    h("div", { class: "cards", "aria-label": "Entities" },
      card("Functions", functions, links.functions(project)),
      card("Workflows", workflows, `#/projects/${encodeURIComponent(project)}/workflows`),
      card("Dataitems", dataitems, `#/projects/${encodeURIComponent(project)}/dataitems`),
      card("Artifacts", artifacts, `#/projects/${encodeURIComponent(project)}/artifacts`),
      card("Models", models, `#/projects/${encodeURIComponent(project)}/models`)),
    h("h2", {}, "Runs by state"),
    h("ul", { class: "states", "data-testid": "runs-by-state" },
      RUN_STATES.map((state, i) => h("li", {},
        h("a", { href: `${links.runs(project)}?state=${state}` }, stateBadge(state), " ", h("span", { class: "count", "data-state": state }, String(byState[i])))))),
    h("h2", {}, "Latest runs"),
    latest.content.length ? runsTable(project, latest.content) : h("p", { class: "muted" }, "No runs yet."),
    h("p", {}, h("a", { href: links.runs(project) }, `All runs (${latest.totalElements})`)));
}
