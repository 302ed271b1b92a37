// A run's lineage drawn as a graph: its inputs and its function -> the run -> its outputs -> the runs
// that consumed them. Plain SVG; every label is a text node.
import { api, functionRef, parseKey } from "./api.js";
import { h, short } from "./dom.js";
import { linkOfKey, links } from "./nav.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 190;
const H = 44;
const GAP_X = 70;
const GAP_Y = 14;
const SCAN = 200; // the latest runs searched for consumers (the API has no filter on inputs)

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

function clip(text, n = 24) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function entityNode(key, role) {
  const k = parseKey(key);
  return { id: key, label: k ? k.name : key, sub: k ? `${k.type} · ${role}` : role, href: linkOfKey(key) };
}

/** The runs among the project's latest that took one of `keys` as an input. */
async function consumersOf(project, keys) {
  if (!keys.length) return [];
  const page = await api.list(project, "runs", { size: SCAN });
  return page.content.filter((r) => Object.values(r.spec?.inputs || {}).some((k) => keys.includes(k)));
}

export async function lineage(project, run) {
  const ref = functionRef(run.spec?.function || run.spec?.workflow);
  const inputs = Object.entries(run.spec?.inputs || {}).filter(([, k]) => typeof k === "string");
  const outputs = Object.entries(run.status?.outputs || {}).filter(([, k]) => typeof k === "string");
  const consumers = await consumersOf(project, outputs.map(([, k]) => k));
  const columns = [
    [...(ref ? [{ id: "fn", label: ref.name, sub: `${ref.type} ${short(ref.id)}`, href: ref.type === "function" ? links.fn(ref.project, ref.name, ref.id) : null }] : []),
      ...inputs.map(([, k]) => entityNode(k, "input"))],
    [{ id: run.id, label: `run ${short(run.id)}`, sub: run.status?.state || "", current: true }],
    outputs.map(([, k]) => entityNode(k, "output")),
    consumers.map((r) => ({ id: r.id, label: `run ${short(r.id)}`, sub: `consumer · ${r.status?.state || ""}`, href: links.run(project, r.id) })),
  ].filter((col, i) => col.length || i < 2);
  const edges = [];
  const at = new Map();
  columns.forEach((col, c) => col.forEach((node, r) => at.set(node.id, { x: 10 + c * (W + GAP_X), y: 10 + r * (H + GAP_Y) })));
  for (const node of columns[0]) edges.push([node.id, run.id]);
  for (const [, k] of outputs) edges.push([run.id, k]);
  for (const r of consumers) for (const k of Object.values(r.spec?.inputs || {})) if (at.has(k)) edges.push([k, r.id]);
  const rows = Math.max(...columns.map((c) => c.length));
  const width = 20 + columns.length * W + (columns.length - 1) * GAP_X;
  const height = 20 + rows * H + (rows - 1) * GAP_Y;
  const graph = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "lineage", "aria-label": "Lineage graph" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))));
  for (const [from, to] of edges) {
    const a = at.get(from);
    const b = at.get(to);
    if (!a || !b) continue;
    graph.append(svg("path", { d: `M${a.x + W},${a.y + H / 2} C${a.x + W + GAP_X / 2},${a.y + H / 2} ${b.x - GAP_X / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}`, class: "edge", "marker-end": "url(#arrow)" }));
  }
  for (const col of columns) {
    for (const node of col) {
      const { x, y } = at.get(node.id);
      const title = svg("title");
      title.textContent = node.id;
      const label = svg("text", { x: x + 10, y: y + 18, class: "label" });
      label.textContent = clip(node.label);
      const sub = svg("text", { x: x + 10, y: y + 34, class: "sub" });
      sub.textContent = clip(node.sub, 28);
      const box = svg("g", { class: `node${node.current ? " current" : ""}`, "data-node": node.id }, title,
        svg("rect", { x, y, width: W, height: H, rx: 6 }), label, sub);
      graph.append(node.href ? svg("a", { href: node.href }, box) : box);
    }
  }
  return h("div", { class: "lineage-box", "data-testid": "lineage" }, graph,
    outputs.length ? h("p", { class: "hint" }, `Consumers are looked for among the project's latest ${SCAN} runs.`) : null);
}
