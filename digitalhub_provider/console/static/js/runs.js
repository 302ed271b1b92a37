// Runs: the list (filters and pages in the API), a run's page (state, timeline, inputs, outputs,
// results, logs while it runs, stop), the three steps that create one, and a task instance's run.
import { api, ApiError, FINAL_STATES, fromBase64, functionRef, parseKey, RUN_STATES, TASK_ACTIONS, uuid4 } from "./api.js";
import { clearErrors, dialog, facts, field, fmtDate, h, json, setFieldError, short, showApiError, stateBadge, table } from "./dom.js";
import { lineage } from "./lineage.js";
import { go, linkOfKey, links, withQuery } from "./nav.js";

const PAGE_SIZE = 20;
const POLL_MS = 2000;
const RUN_KINDS = Object.entries(TASK_ACTIONS).flatMap(([runtime, actions]) => actions.map((a) => `${runtime}+${a}:run`));

function functionCell(project, run) {
  const ref = functionRef(run.spec?.function || run.spec?.workflow);
  if (!ref) return "";
  const href = ref.type === "workflow"
    ? ref.id ? links.entity(ref.project, "workflows", ref.id) : `#/projects/${encodeURIComponent(ref.project)}/workflows`
    : links.fn(ref.project, ref.name, ref.id);
  return h("a", { href }, ref.name);
}

export function runsTable(project, runs) {
  return table(runs, [
    ["Run", (r) => h("a", { href: links.run(project, r.id), "data-run": r.id }, short(r.id))],
    ["Function", (r) => functionCell(project, r)],
    ["Kind", (r) => r.kind],
    ["State", (r) => stateBadge(r.status?.state)],
    ["Created", (r) => fmtDate(r.metadata?.created)],
  ]);
}

export async function runsList(ctx) {
  const [project] = ctx.params;
  const q = Object.fromEntries(["name", "kind", "state", "function"].map((k) => [k, ctx.query.get(k) || ""]));
  const pageNo = Number(ctx.query.get("page") || 0);
  ctx.crumbs(project, [["Runs"]]);
  ctx.title(`Runs · ${project}`);
  const page = await api.list(project, "runs", { ...q, page: pageNo, size: PAGE_SIZE });
  const base = `/projects/${encodeURIComponent(project)}/runs`;
  const name = h("input", { name: "name", value: q.name, autocomplete: "off" });
  const kind = h("select", { name: "kind" }, h("option", { value: "" }, "any"), RUN_KINDS.map((k) => h("option", { value: k, selected: k === q.kind }, k)));
  const state = h("select", { name: "state" }, h("option", { value: "" }, "any"), RUN_STATES.map((s) => h("option", { value: s, selected: s === q.state }, s)));
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter runs" },
    field("Name", name), field("Kind", kind), field("State", state), h("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    go(withQuery(base, { name: name.value.trim(), kind: kind.value, state: state.value, function: q.function }));
  });
  const fn = functionRef(q.function);
  return h("section", { "data-page": "runs" },
    h("h1", {}, fn ? `Runs of ${fn.name}` : "Runs"),
    fn ? h("p", {}, h("a", { href: `#${withQuery(base, { ...q, function: "" })}` }, "Show the runs of every function")) : null,
    filters,
    h("p", { class: "muted", "data-testid": "total" }, `${page.totalElements} run${page.totalElements === 1 ? "" : "s"}`),
    page.content.length ? runsTable(project, page.content) : h("p", { class: "muted" }, "No run matches."),
    pagerOf(page, (n) => withQuery(base, { ...q, page: n })));
}

function pagerOf(page, hrefOf) {
  if (page.totalPages <= 1) return null;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    page.number > 0 ? h("a", { href: `#${hrefOf(page.number - 1)}`, rel: "prev" }, "Previous") : null,
    h("span", {}, `Page ${page.number + 1} of ${page.totalPages}`),
    page.number + 1 < page.totalPages ? h("a", { href: `#${hrefOf(page.number + 1)}`, rel: "next" }, "Next") : null);
}

function keyList(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return null;
  return h("ul", { class: "keys" }, entries.map(([name, key]) => {
    const href = typeof key === "string" ? linkOfKey(key) : null;
    return h("li", {}, h("strong", {}, name), ": ", href ? h("a", { href }, String(key)) : typeof key === "string" ? key : JSON.stringify(key));
  }));
}

function airflowLink(airflow) {
  if (!airflow || !airflow.dag_id || !airflow.dag_run_id) return null;
  const href = `/dags/${encodeURIComponent(airflow.dag_id)}/runs/${encodeURIComponent(airflow.dag_run_id)}`;
  return h("a", { href, target: "_top" }, `${airflow.dag_id} / ${airflow.dag_run_id}`);
}

function taskInstanceOf(run) {
  const labels = Object.fromEntries((run.metadata?.labels || []).filter((l) => l.startsWith("airflow.") && l.includes("="))
    .map((l) => l.slice("airflow.".length).split("=", 2)));
  if (!labels.dag_id || !labels.run_id || !labels.task_id) return null;
  const href = `/dags/${encodeURIComponent(labels.dag_id)}/runs/${encodeURIComponent(labels.run_id)}/tasks/${encodeURIComponent(labels.task_id)}`;
  return h("a", { href, target: "_top" }, `${labels.dag_id} / ${labels.run_id} / ${labels.task_id}`);
}

/** The run's page, refreshed while the run is not finished (its log too, while it runs). */
async function runView(ctx, project, id) {
  let run = await api.get(project, "runs", id);
  const root = h("div", { class: "run", "data-run": id });
  const logBox = h("pre", { class: "log", "data-testid": "log", tabindex: 0, "aria-label": "Log" });
  const logNote = h("p", { class: "muted", "aria-live": "polite" });
  let timer = null;
  let stopped = false;
  let graph = null; // the lineage, drawn again when the run's state changes
  let graphState = null;
  ctx.onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });

  async function loadLogs() {
    try {
      const entries = await api.logs(project, id);
      const text = (entries || []).map((e) => (e.content ? fromBase64(e.content) : "")).join("");
      logBox.textContent = text;
      logNote.textContent = text ? "" : FINAL_STATES.includes(run.status?.state) ? "This run left no log." : "No log yet.";
    } catch (err) {
      logNote.textContent = err.status === 404 ? "The log is gone." : `The log cannot be read: ${err.message}`;
    }
  }

  function draw() {
    const state = run.status?.state;
    const spec = run.spec || {};
    const status = run.status || {};
    const final = FINAL_STATES.includes(state);
    const stop = h("button", { type: "button", class: "danger", disabled: final }, "Stop");
    stop.addEventListener("click", async () => {
      const answer = await dialog("Stop the run?", h("p", {}, `Run ${short(id)} is ${state}.`), [["Cancel", "cancel"], ["Stop", "stop", "danger"]]);
      if (answer !== "stop") return;
      try {
        run = await api.stop(project, id);
      } catch (err) {
        await dialog("Not stopped", h("p", {}, err.message));
      }
      refresh();
    });
    const transitions = (status.transitions || []).map((t) => h("li", {}, stateBadge(t.status), " ", fmtDate(t.time), t.message ? h("span", { class: "muted" }, ` ${t.message}`) : null));
    const parts = [
      h("div", { class: "title-row" }, h("h1", {}, `Run ${short(id)}`),
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => dialog("Inspector", json(run)) }, "Inspector"), stop)),
      h("p", { class: "run-state" }, "State: ", h("span", { role: "status", "data-testid": "state" }, stateBadge(state)),
        status.message ? h("span", { class: "message" }, ` ${status.message}`) : null),
      facts([
        ["Id", run.id], ["Kind", run.kind], ["Function", functionCell(project, run)], ["Task", spec.task],
        ["Created", fmtDate(run.metadata?.created)], ["Updated", fmtDate(run.metadata?.updated)],
        ["Airflow DAG run", airflowLink(status.airflow)], ["Airflow task", taskInstanceOf(run)],
      ]),
      transitions.length ? [h("h2", {}, "Timeline"), h("ol", { class: "timeline" }, transitions)] : null,
      spec.parameters && Object.keys(spec.parameters).length ? [h("h2", {}, "Parameters"), json(spec.parameters)] : null,
      spec.inputs && Object.keys(spec.inputs).length ? [h("h2", {}, "Inputs"), keyList(spec.inputs)] : null,
      status.outputs && Object.keys(status.outputs).length ? [h("h2", {}, "Outputs"), h("div", { "data-testid": "outputs" }, keyList(status.outputs))] : null,
      status.results && Object.keys(status.results).length ? [h("h2", {}, "Results"), h("div", { "data-testid": "results" }, json(status.results))] : null,
      graph ? [h("h2", {}, "Lineage"), graph] : null,
      h("h2", {}, "Logs"), logNote, logBox];
    root.replaceChildren(...parts.flat(Infinity).filter(Boolean));
  }

  async function drawLineage() {
    if (graphState === run.status?.state) return;
    graphState = run.status?.state;
    try {
      graph = await lineage(project, run);
    } catch {
      graph = null;
    }
  }

  async function refresh() {
    if (stopped) return;
    try {
      run = await api.get(project, "runs", id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        root.replaceChildren(h("p", {}, "This run was deleted."));
        return;
      }
    }
    if (stopped) return;
    await drawLineage();
    draw();
    await loadLogs();
    if (!stopped && !FINAL_STATES.includes(run.status?.state)) timer = setTimeout(refresh, POLL_MS);
  }
  await drawLineage();
  draw();
  await loadLogs();
  if (!FINAL_STATES.includes(run.status?.state)) timer = setTimeout(refresh, POLL_MS);
  return root;
}

export async function runDetail(ctx) {
  const [project, id] = ctx.params;
  ctx.crumbs(project, [["Runs", links.runs(project)], [short(id)]]);
  ctx.title(`Run ${short(id)}`);
  return h("section", { "data-page": "run" }, await runView(ctx, project, id));
}

/** The newest run an Airflow task instance started, found by the labels the operators give their runs
 * (airflow.dag_id, run_id, task_id, and map_index for a mapped instance): it is there from the moment the
 * run is created, while the task runs. The API filters by labels in SQL; one request per project. */
async function labelledRun(dagId, runId, taskId, mapIndex) {
  const labels = [`airflow.dag_id=${dagId}`, `airflow.run_id=${runId}`, `airflow.task_id=${taskId}`];
  if (mapIndex >= 0) labels.push(`airflow.map_index=${mapIndex}`);
  const projects = [];
  for (let page = 0; ; page++) {
    const got = await api.projects({ page, size: 200 });
    projects.push(...got.content);
    if (page + 1 >= got.totalPages) break;
  }
  const newest = await Promise.all(projects.map(async (p) => {
    try {
      return (await api.list(p.name, "runs", { labels, size: 1 })).content[0] || null;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null; // a project deleted meanwhile
      throw err;
    }
  }));
  const created = (r) => Date.parse(r.metadata?.created || "") || 0;
  return newest.filter(Boolean).sort((a, b) => created(b) - created(a))[0] || null;
}

/** The run a task instance returned (its return_value XCom, there once the task ended): for a run the labels
 * do not find (one made by a provider version that did not label it, or kept on a Core without the filter). */
async function returnedRun(dagId, runId, taskId, mapIndex) {
  let value = null;
  try {
    value = (await api.xcom(dagId, runId, taskId, mapIndex, "return_value")).value;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const key = value && typeof value === "object" ? parseKey(value.run_key) : null;
  return key ? { project: key.project, id: key.id } : null;
}

const TI_FINISHED = ["success", "failed", "skipped", "upstream_failed", "removed"];

/** A task instance's tab in Airflow: the DigitalHub run the task started (by its labels), or returned. While
 * the task has none and has not finished (queued, or starting its run), the tab looks again every 2 s. */
export async function taskInstanceRun(ctx) {
  const [dagId, runId, taskId, rawIndex] = ctx.params;
  const mapIndex = rawIndex === "{MAP_INDEX}" ? -1 : Number(rawIndex);
  ctx.crumbs(null, [[`${dagId} / ${taskId}`]]);
  ctx.title(`${taskId} · DigitalHub run`);
  const section = h("section", { "data-page": "task-instance" });
  let timer = null;
  let left = false;
  ctx.onLeave(() => {
    left = true;
    clearTimeout(timer);
  });

  async function find() {
    const run = await labelledRun(dagId, runId, taskId, mapIndex);
    return run ? { project: run.project, id: run.id } : returnedRun(dagId, runId, taskId, mapIndex);
  }

  async function unfinished() {
    try {
      return !TI_FINISHED.includes((await api.taskInstance(dagId, runId, taskId, mapIndex)).state);
    } catch {
      return false; // its state cannot be read: no looking again
    }
  }

  async function show(found) {
    section.replaceChildren(
      h("p", {}, h("a", { href: links.run(found.project, found.id), target: "_blank", rel: "noopener" }, "Open in the DigitalHub console")),
      await runView(ctx, found.project, found.id));
  }

  async function lookAgain() {
    if (left) return;
    let found = null;
    try {
      found = await find();
    } catch {
      found = null; // a failed look is retried while the task runs
    }
    if (left) return;
    if (found) await show(found);
    else if (await unfinished()) timer = setTimeout(lookAgain, POLL_MS);
  }

  const found = await find();
  if (found) {
    await show(found);
    return section;
  }
  section.replaceChildren(h("h1", {}, "No DigitalHub run"),
    h("p", {}, `Task ${taskId} has recorded no DigitalHub run: it is not a DigitalHub task, or it has not started one yet.`));
  if (await unfinished()) timer = setTimeout(lookAgain, POLL_MS);
  return section;
}

// -- creating a run -------------------------------------------------------------------------------------
function pairs(text, sep, what) {
  const out = [];
  for (const line of text.split("\n").map((s) => s.trim()).filter(Boolean)) {
    const at = line.indexOf(sep);
    if (at <= 0) throw new Error(`"${line}" is not ${what}`);
    out.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return out;
}

function jsonOf(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not JSON: ${err.message}`);
  }
}

/** Three steps: task settings; inputs, outputs and parameters; a recap. Then a task and a run. */
export async function runCreate(ctx) {
  const [project, name, id] = ctx.params;
  const fn = await api.get(project, "functions", id);
  ctx.crumbs(project, [["Functions", links.functions(project)], [name, links.fn(project, name, id)], ["New run"]]);
  ctx.title(`New run of ${name}`);
  const actions = TASK_ACTIONS[fn.kind] || ["job"];
  const el = {
    action: h("select", { name: "action" }, actions.map((a) => h("option", { value: a }, a))),
    cpu: h("input", { name: "cpu", autocomplete: "off", placeholder: "1" }),
    mem: h("input", { name: "mem", autocomplete: "off", placeholder: "1Gi" }),
    gpu: h("input", { name: "gpu", autocomplete: "off" }),
    envs: h("textarea", { name: "envs", rows: 3, placeholder: "NAME=value" }),
    secrets: h("textarea", { name: "secrets", rows: 2 }),
    volumes: h("textarea", { name: "volumes", rows: 3, placeholder: '[{"volume_type": "persistent_volume_claim", ...}]' }),
    node_selector: h("textarea", { name: "node_selector", rows: 2, placeholder: "key=value" }),
    backoff_limit: h("input", { name: "backoff_limit", type: "number", min: 0, inputmode: "numeric" }),
    inputs: h("textarea", { name: "inputs", rows: 3, placeholder: "name=store://project/dataitem/table/name:id" }),
    outputs: h("textarea", { name: "outputs", rows: 2, placeholder: "name" }),
    parameters: h("textarea", { name: "parameters", rows: 4, placeholder: '{"x": 1}', class: "code" }),
  };
  const steps = [
    h("fieldset", { "data-step": 1 }, h("legend", {}, "1. Task settings"),
      field("Action", el.action), field("CPU", el.cpu), field("Memory", el.mem), field("GPU", el.gpu),
      field("Environment variables", el.envs, "One NAME=value a line."), field("Secrets", el.secrets, "One secret name a line."),
      field("Volumes", el.volumes, "A JSON list."), field("Node selector", el.node_selector, "One key=value a line."),
      field("Backoff limit", el.backoff_limit, "Retries of a failed job.")),
    h("fieldset", { "data-step": 2, hidden: true }, h("legend", {}, "2. Inputs, outputs and parameters"),
      field("Inputs", el.inputs, "One name=key a line (keys of dataitems, artifacts or models)."),
      field("Outputs", el.outputs, "One output name a line."),
      field("Parameters", el.parameters, "A JSON object.")),
    h("fieldset", { "data-step": 3, hidden: true }, h("legend", {}, "3. Recap"), h("pre", { class: "json", "data-testid": "recap" })),
  ];
  const back = h("button", { type: "button", disabled: true }, "Back");
  const next = h("button", { type: "submit", class: "primary" }, "Next");
  const form = h("form", { class: "entity-form wizard", novalidate: true, "aria-label": "New run" },
    h("p", { class: "form-error", role: "alert" }), steps, h("div", { class: "buttons" }, back, next));
  let step = 0;
  let built = null;
  const show = (n) => {
    step = n;
    steps.forEach((s, i) => { s.hidden = i !== n; });
    back.disabled = n === 0;
    next.textContent = n === 2 ? "Create run" : "Next";
  };
  back.addEventListener("click", () => show(step - 1));

  function build() {
    const taskSpec = { function: `${fn.kind}://${project}/${fn.name}:${fn.id}` };
    const resources = Object.fromEntries(["cpu", "mem", "gpu"].map((k) => [k, el[k].value.trim()]).filter(([, v]) => v));
    if (Object.keys(resources).length) taskSpec.resources = resources;
    const envs = pairs(el.envs.value, "=", "NAME=value").map(([name, value]) => ({ name, value }));
    if (envs.length) taskSpec.envs = envs;
    const secrets = el.secrets.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (secrets.length) taskSpec.secrets = secrets;
    const volumes = jsonOf(el.volumes.value, "Volumes");
    if (volumes !== undefined) taskSpec.volumes = volumes;
    const selector = pairs(el.node_selector.value, "=", "key=value").map(([key, value]) => ({ key, value }));
    if (selector.length) taskSpec.node_selector = selector;
    if (el.backoff_limit.value !== "") taskSpec.backoff_limit = Number(el.backoff_limit.value);
    const action = el.action.value;
    const taskKind = `${fn.kind}+${action}`;
    const taskId = uuid4();
    const runId = uuid4();
    const runSpec = { ...taskSpec, task: `${taskKind}://${project}/${taskId}`, local_execution: false };
    const inputs = Object.fromEntries(pairs(el.inputs.value, "=", "name=key"));
    if (Object.keys(inputs).length) runSpec.inputs = inputs;
    const outputs = el.outputs.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (outputs.length) runSpec.outputs = outputs;
    const parameters = jsonOf(el.parameters.value, "Parameters");
    if (parameters !== undefined) runSpec.parameters = parameters;
    return {
      task: { id: taskId, name: taskId, kind: taskKind, project, metadata: { project, name: taskId }, spec: taskSpec, status: { state: "CREATED" } },
      run: { id: runId, name: runId, kind: `${taskKind}:run`, project, metadata: { project, name: runId }, spec: runSpec, status: { state: "CREATED" } },
    };
  }

  function check(n) {
    const bad = [];
    const attempt = (fieldName, fn) => {
      try {
        fn();
      } catch (err) {
        bad.push([fieldName, err.message]);
      }
    };
    if (n === 0) {
      attempt("envs", () => pairs(el.envs.value, "=", "NAME=value"));
      attempt("node_selector", () => pairs(el.node_selector.value, "=", "key=value"));
      attempt("volumes", () => {
        const v = jsonOf(el.volumes.value, "Volumes");
        if (v !== undefined && !Array.isArray(v)) throw new Error("Volumes must be a JSON list.");
      });
      if (el.backoff_limit.value !== "" && !(Number(el.backoff_limit.value) >= 0)) bad.push(["backoff_limit", "Zero or more."]);
    } else if (n === 1) {
      attempt("inputs", () => pairs(el.inputs.value, "=", "name=key"));
      attempt("parameters", () => {
        const v = jsonOf(el.parameters.value, "Parameters");
        if (v !== undefined && (v === null || typeof v !== "object" || Array.isArray(v))) throw new Error("Parameters must be a JSON object.");
      });
    }
    for (const [name, message] of bad) setFieldError(form, name, message);
    return !bad.length;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (step < 2) {
      if (!check(step)) return;
      if (step === 1) {
        built = build();
        steps[2].querySelector("pre").textContent = JSON.stringify({ task: built.task.spec, run: built.run.spec }, null, 2);
      }
      show(step + 1);
      return;
    }
    next.disabled = true;
    try {
      await api.create(project, "tasks", built.task);
      const run = await api.create(project, "runs", built.run);
      go(`/projects/${encodeURIComponent(project)}/runs/${encodeURIComponent(run.id)}`);
    } catch (err) {
      const m = /field '([^']+)'/.exec(err.message);
      const fieldName = m ? m[1].replace(/^spec\./, "") : null;
      const where = ["resources", "envs", "secrets", "volumes", "node_selector", "backoff_limit"].includes(fieldName) ? 0
        : ["inputs", "outputs", "parameters"].includes(fieldName) ? 1 : 2;
      show(where);
      showApiError(form, err, { resources: "cpu" });
    } finally {
      next.disabled = false;
    }
  });
  return h("section", { "data-page": "run-create" }, h("h1", {}, `New run of ${name}`),
    h("p", { class: "muted" }, `Version ${short(fn.id)}; executed by Airflow (the digitalhub_runs DAG).`), form);
}
