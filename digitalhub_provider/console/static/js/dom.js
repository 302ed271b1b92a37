// DOM helpers. Entity content only ever reaches the page as text nodes or attribute values.

/** An element: h("a", {href: "#/"}, "text", child, ...). Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function fmtDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function short(id) {
  return String(id || "").slice(0, 8);
}

export function stateBadge(state) {
  return h("span", { class: `state state-${String(state || "").toLowerCase()}` }, state || "?");
}

let fieldCount = 0;

/** A labelled form field; `control` is an input, select or textarea with a `name`. */
export function field(label, control, hint) {
  const id = control.id || `f${++fieldCount}-${control.name}`;
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h("div", { class: "field", "data-field": control.name },
    h("label", { for: id }, label), control, hint ? h("p", { class: "hint" }, hint) : null, error);
}

export function setFieldError(form, name, message) {
  const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  const slot = box ? box.querySelector(".field-error") : form.querySelector(".form-error");
  if (box) box.querySelector("input, select, textarea")?.setAttribute("aria-invalid", message ? "true" : "false");
  if (slot) slot.textContent = message || "";
  return Boolean(box);
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.setAttribute("aria-invalid", "false");
}

/**
 * Shows an API error next to the field it names ("invalid field 'name'", "field 'python_version'"),
 * else at the top of the form. `aliases` maps the API's field names to the form's.
 */
export function showApiError(form, err, aliases = {}) {
  const message = err.message || String(err);
  for (const m of message.matchAll(/field '([^']+)'/g)) {
    const name = aliases[m[1]] || aliases[m[1].replace(/^spec\./, "")] || m[1].replace(/^spec\./, "");
    if (setFieldError(form, name, message)) return;
  }
  const top = form.querySelector(".form-error");
  if (top) top.textContent = message;
}

/** A modal <dialog> with a title, a body and buttons; resolves with the button's value. */
export function dialog(title, body, buttons = [["Close", "close"]]) {
  const dlg = h("dialog", { class: "dialog", "aria-label": title },
    h("h2", {}, title), body,
    h("form", { method: "dialog", class: "buttons" },
      buttons.map(([text, value, cls]) => h("button", { value, class: cls || "" }, text))));
  document.body.append(dlg);
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue);
      dlg.remove();
    });
    dlg.showModal();
  });
}

/** A table: columns as [header, cell(row) -> node or text]. */
export function table(rows, columns, caption) {
  return h("table", { class: "list" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

/** A definition list of [term, value] pairs (values: text or nodes; empty ones left out). */
export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** Download text as a file (a same-origin blob: URL). */
export function download(filename, text, type = "application/yaml") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- YAML (block style, as PyYAML's safe_dump writes it; strings JSON-quoted when plain would be ambiguous)
const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./+@-]*(?: [A-Za-z0-9_./+@()-]+)*$/;
const RESERVED = /^(?:true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  return PLAIN.test(text) && !RESERVED.test(text) ? text : JSON.stringify(text);
}

const nested = (v) => v !== null && typeof v === "object" && Object.keys(v).length > 0;
const inline = (v) => (Array.isArray(v) ? "[]" : v !== null && typeof v === "object" ? "{}" : scalar(v));

function block(value, indent) {
  const lines = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (nested(item)) {
        const sub = block(item, `${indent}  `);
        lines.push(`${indent}- ${sub[0].slice(indent.length + 2)}`, ...sub.slice(1));
      } else lines.push(`${indent}- ${inline(item)}`);
    }
  } else {
    for (const [key, item] of Object.entries(value)) {
      if (nested(item)) lines.push(`${indent}${scalar(key)}:`, ...block(item, `${indent}  `));
      else lines.push(`${indent}${scalar(key)}: ${inline(item)}`);
    }
  }
  return lines;
}

export function toYaml(value) {
  return nested(value) ? `${block(value, "").join("\n")}\n` : `${inline(value)}\n`;
}
