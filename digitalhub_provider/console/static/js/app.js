// The console's router: hash routes (#/projects/p/runs/id), one page at a time in <main>.
import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { dashboard, projectsPage } from "./projects.js";
import { functionCreate, functionDetail, functionEdit, functionLatest, functionsList } from "./functions.js";
import { runCreate, runDetail, runsList, taskInstanceRun } from "./runs.js";
import { entityDetail, entityList } from "./entities.js";

const P = "([^/]+)";
const ROUTES = [
  [/^\/?$/, projectsPage],
  [new RegExp(`^/projects/${P}$`), dashboard],
  [new RegExp(`^/projects/${P}/functions$`), functionsList],
  [new RegExp(`^/projects/${P}/functions/new$`), functionCreate],
  [new RegExp(`^/projects/${P}/functions/${P}$`), functionLatest],
  [new RegExp(`^/projects/${P}/functions/${P}/${P}$`), functionDetail],
  [new RegExp(`^/projects/${P}/functions/${P}/${P}/edit$`), functionEdit],
  [new RegExp(`^/projects/${P}/functions/${P}/${P}/run$`), runCreate],
  [new RegExp(`^/projects/${P}/runs$`), runsList],
  [new RegExp(`^/projects/${P}/runs/${P}$`), runDetail],
  [new RegExp(`^/projects/${P}/(workflows|dataitems|artifacts|models)$`), entityList],
  [new RegExp(`^/projects/${P}/(workflows|dataitems|artifacts|models)/${P}$`), entityDetail],
  [new RegExp(`^/ti/${P}/${P}/${P}/${P}$`), taskInstanceRun],
];

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const projectNav = document.getElementById("project-nav");
let leaving = []; // what the current page stops when another one opens (pollers)
let generation = 0;

function setCrumbs(project, trail) {
  const items = [h("a", { href: "#/" }, "Projects")];
  if (project) items.push(h("a", { href: `#/projects/${encodeURIComponent(project)}` }, project));
  for (const [text, href] of trail || []) items.push(href ? h("a", { href }, text) : h("span", {}, text));
  crumbs.replaceChildren(...items.flatMap((el, i) => (i ? [h("span", { class: "sep", "aria-hidden": "true" }, "/"), el] : [el])));
  projectNav.hidden = !project;
  if (project) {
    const base = `#/projects/${encodeURIComponent(project)}`;
    const here = location.hash.split("?")[0];
    projectNav.replaceChildren(...[["Dashboard", ""], ["Functions", "/functions"], ["Runs", "/runs"],
      ["Workflows", "/workflows"], ["Dataitems", "/dataitems"], ["Artifacts", "/artifacts"], ["Models", "/models"]]
      .map(([text, sub]) => h("a", { href: base + sub, "aria-current": here === base + sub ? "page" : false }, text)));
  }
}

/** What a page gets: its route's parameters, the hash's query, and hooks into the layout. */
function context(params, query, gen) {
  return {
    params,
    query,
    crumbs: setCrumbs,
    title: (text) => { document.title = `${text} · DigitalHub`; },
    onLeave: (fn) => leaving.push(fn),
    current: () => gen === generation,
  };
}

export function notFound(what, back) {
  document.title = "Not found · DigitalHub";
  return h("section", { class: "not-found", "data-page": "not-found" },
    h("h1", {}, "Not found"),
    h("p", {}, what || "There is nothing at this address."),
    h("p", {}, "It may have been deleted, or the link is out of date."),
    h("p", {}, h("a", { href: back || "#/" }, back ? "Back to the list" : "Back to the projects")));
}

function errorPage(err) {
  if (err instanceof ApiError && err.status === 401) {
    return h("section", { class: "problem", "data-page": "unauthorized" },
      h("h1", {}, "Not logged in"),
      h("p", {}, "Your Airflow session has ended. Log in to Airflow again, then reload this page."),
      h("p", {}, h("a", { href: "/", target: "_top" }, "Open Airflow")));
  }
  if (err instanceof ApiError && err.status === 403) {
    return h("section", { class: "problem", "data-page": "forbidden" },
      h("h1", {}, "Not allowed"), h("p", {}, "Your Airflow user may not see this."));
  }
  const message = err instanceof ApiError ? err.message : "The page could not be shown.";
  if (!(err instanceof ApiError)) console.error(err);
  return h("section", { class: "problem", "data-page": "error" }, h("h1", {}, "Something went wrong"), h("p", {}, message));
}

async function render() {
  const gen = ++generation;
  for (const stop of leaving) stop();
  leaving = [];
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search] = raw.split("?", 2);
  const query = new URLSearchParams(search || "");
  let page = null;
  let params = [];
  for (const [re, fn] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      page = fn;
      params = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  main.setAttribute("aria-busy", "true");
  let node;
  try {
    if (!page) {
      setCrumbs(null, []);
      node = notFound();
    } else {
      node = await page(context(params, query, gen));
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) node = notFound(friendly404(err.message, params), listOf(path));
    else node = errorPage(err);
  }
  if (gen !== generation) return; // another page opened meanwhile
  main.replaceChildren(node);
  main.removeAttribute("aria-busy");
  main.dataset.route = location.hash; // the route shown: what a test waits for
  performance.mark("console:rendered", { detail: location.hash }); // and times (benchmark P9)

}

function friendly404(message, params) {
  const m = /No such EntityName: (\w+) /.exec(message || "");
  const what = m ? m[1] : "entity";
  return `This ${what} does not exist${params[0] && what !== "project" ? ` in project ${params[0]}` : ""}.`;
}

function listOf(path) {
  const m = /^(\/projects\/[^/]+\/[a-z]+)\//.exec(path);
  return m ? `#${m[1]}` : null;
}

window.addEventListener("hashchange", render);
render();
