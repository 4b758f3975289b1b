// Building the page's elements. Text always goes in as text (never parsed as HTML), so nothing the
// models, mail or files say can become markup or script.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "hidden") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

// Element.append, but leaving out null/undefined/false (a view's "show this only if…").
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// Tells screen-reader users what changed (a stream that ended, an error) without moving their focus.
export function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error && error.message ? error.message : String(error));
}

export function when(seconds) {
  if (!seconds) return "";
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function size(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(0)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

// Marks every occurrence of ``words`` in ``text`` (case-insensitive), as text nodes and <mark> elements.
export function highlighted(text, words) {
  const wanted = [...new Set(words.filter((w) => w.length > 2).map((w) => w.toLowerCase()))];
  if (!wanted.length) return [text];
  const escaped = wanted.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`\\b(${escaped.join("|")})\\w*`, "gi");
  const out = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    out.push(text.slice(last, match.index), h("mark", {}, match[0]));
    last = match.index + match[0].length;
  }
  out.push(text.slice(last));
  return out;
}

// Spans given as [start, end) offsets (a search snippet's highlights) marked in the text.
export function spans(text, ranges) {
  const out = [];
  let last = 0;
  for (const [start, end] of ranges || []) {
    out.push(text.slice(last, start), h("mark", {}, text.slice(start, end)));
    last = end;
  }
  out.push(text.slice(last));
  return out;
}
