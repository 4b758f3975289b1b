// Tasks: one form per task, made from the task's request schema (GET /v1/tasks), so a task added to plait
// appears here by itself. Text pasted or a file uploaded; results shown as what they are.

import { api, request, stream } from "../api.js";
import { announce, append, clear, errorBox, field, h } from "../dom.js";
import { markdown } from "../markdown.js";

function resolve(schema, root) {
  if (schema && schema.$ref) return root.$defs[schema.$ref.split("/").pop()];
  return schema || {};
}

// The simple shape of a property: one of its anyOf choices that a form can hold, null left out.
function simple(prop, root) {
  const options = (prop.anyOf || [prop]).map((p) => resolve(p, root)).filter((p) => p.type !== "null");
  return options.find((p) => p.type === "array" && p.items && p.items.type === "string")
    || options.find((p) => ["string", "integer", "number", "boolean"].includes(p.type) || p.enum) || options[0] || {};
}

function control(name, prop, root, task) {
  const shape = simple(prop, root);
  const label = prop.title || name;
  const dflt = prop.default;
  if (task.file_input && name === task.input) {
    const preview = h("div", { class: "preview" });
    const input = h("input", { type: "file", name, required: true, accept: name === "image" ? "image/*" : "audio/wav,.wav",
      onchange: () => {
        const file = input.files[0];
        if (!file) return;
        const url = URL.createObjectURL(file); // the chosen file, shown before it is sent
        append(clear(preview), file.type.startsWith("image/") ? h("img", { src: url, alt: file.name, class: "thumb" })
          : h("audio", { controls: true, src: url }));
      } });
    return { el: input, kind: "file", label, extra: preview };
  }
  if (shape.enum) {
    const select = h("select", { name }, ...(dflt === undefined ? [h("option", { value: "" }, "—")] : []),
      ...shape.enum.map((v) => h("option", { value: v, selected: v === dflt }, v)));
    return { el: select, kind: "enum", label };
  }
  if (shape.type === "boolean") return { el: h("input", { type: "checkbox", name, checked: dflt === true }), kind: "bool", label };
  if (shape.type === "integer" || shape.type === "number") {
    return { el: h("input", { type: "number", name, step: shape.type === "integer" ? 1 : "any",
      min: shape.minimum ?? shape.exclusiveMinimum, max: shape.maximum, value: dflt ?? "" }), kind: shape.type, label };
  }
  if (shape.type === "array") {
    return { el: h("textarea", { name, rows: 3, placeholder: "one per line" }), kind: "lines", label };
  }
  if (shape.type === "string") {
    const long = name === task.input || /text|prompt|question|calendar|instructions|system/.test(name);
    return { el: long ? h("textarea", { name, rows: name === task.input ? 8 : 3 }) : h("input", { name, value: dflt ?? "" }), kind: "string", label };
  }
  return { el: h("textarea", { name, rows: 3, class: "mono", placeholder: "JSON" }), kind: "json", label };
}

function readFile(file) {
  return new Promise((resolveRead, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolveRead(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function collect(form, controls) {
  const body = {};
  for (const [name, c] of Object.entries(controls)) {
    const el = c.el;
    if (c.kind === "file") { if (el.files[0]) body[name] = await readFile(el.files[0]); continue; }
    if (c.kind === "bool") { body[name] = el.checked; continue; }
    const raw = el.value;
    if (raw === "") continue;
    if (c.kind === "integer") body[name] = parseInt(raw, 10);
    else if (c.kind === "number") body[name] = parseFloat(raw);
    else if (c.kind === "lines") body[name] = raw.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (c.kind === "json") {
      try { body[name] = JSON.parse(raw); } catch { throw new Error(`${name}: not valid JSON`); }
    } else body[name] = raw;
  }
  return body;
}

// A result shown as what it is; anything else as its JSON.
function show(task, data) {
  const out = [];
  if (task.name === "explain" && data.words) {
    const max = Math.max(1e-9, ...data.words.map((w) => Math.abs(w.score)));
    const words = [];
    let last = 0;
    for (const w of data.words) {
      words.push(data.text.slice(last, w.start));
      const span = h("span", { class: w.score >= 0 ? "towards" : "away",
        title: `${w.score >= 0 ? "+" : ""}${w.score.toFixed(3)}` }, w.text);
      const alpha = (0.08 + 0.6 * (Math.abs(w.score) / max)).toFixed(2); // stronger words, deeper colour
      span.style.backgroundColor = w.score >= 0 ? `rgba(30, 140, 60, ${alpha})` : `rgba(200, 40, 40, ${alpha})`;
      words.push(span);
      last = w.end;
    }
    words.push(data.text.slice(last));
    out.push(h("p", {}, `${data.label} (p = ${data.probability.toFixed(3)}), ${data.method}`), h("p", { class: "explained" }, ...words));
  } else if (task.name === "see" && data.labels) {
    out.push(h("ol", {}, ...data.labels.map((l) => h("li", {}, `${l.label} `, h("meter", { min: 0, max: 1, value: l.score }), ` ${l.score.toFixed(3)}`))));
  } else if (task.name === "classify" && data.scores) {
    out.push(h("p", {}, data.abstained ? "Not sure (abstained)" : `Label: ${data.labels.join(", ")}`),
      h("ul", {}, ...data.scores.map((s) => h("li", {}, `${s.label} `, h("meter", { min: 0, max: 1, value: s.probability }), ` ${s.probability.toFixed(3)}`))));
  } else if (typeof data.text === "string") {
    out.push(...markdown(data.text));
  }
  out.push(h("details", {}, h("summary", {}, "JSON"), h("pre", {}, h("code", {}, JSON.stringify(data, null, 2)))));
  return out;
}

export async function render(main, params) {
  const tasks = await api("/v1/tasks");
  const picker = h("nav", { class: "task-list", "aria-label": "Tasks" }, h("ul", {}, ...tasks.map((t) => h("li", {},
    h("a", { href: `#/tasks/${t.name}` }, t.name), h("small", { class: "muted" }, ` ${t.summary}`)))));
  append(main, h("h1", {}, "Tasks"));
  const task = tasks.find((t) => t.name === params[0]);
  if (!task) {
    append(main, h("p", { class: "muted" }, "Every task plait offers, with a form made from its request."), picker);
    return null;
  }
  const schema = task.request;
  const controls = {};
  const fields = [];
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const c = control(name, prop, schema, task);
    controls[name] = c;
    fields.push(field(c.label + ((schema.required || []).includes(name) ? " *" : ""), c.el, prop.description), c.extra);
  }
  const output = h("section", { class: "result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Run");
  const form = h("form", { class: "task-form" }, ...fields, h("div", { class: "row" }, submit));
  append(main, h("p", {}, h("a", { href: "#/tasks" }, "All tasks"), " · ", h("strong", {}, task.name), ": ", task.summary),
    form, output);
  let controller = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    output.setAttribute("aria-busy", "true");
    append(clear(output), h("p", { class: "muted", role: "status" }, "running…"));
    try {
      const body = await collect(form, controls);
      if (task.media_type.startsWith("audio/")) {
        const response = await request(`/v1/${task.name}`, { method: "POST", body });
        const url = URL.createObjectURL(await response.blob());
        append(clear(output), h("audio", { controls: true, src: url }), h("p", {}, h("a", { href: url, download: `${task.name}.wav` }, "Download")));
      } else if (task.streams) {
        let text = "";
        const live = h("div", { class: "answer" });
        append(clear(output), live);
        controller = new AbortController();
        await stream(`/v1/${task.name}`, body, (ev) => {
          if (ev.type === "delta") { text += ev.text; append(clear(live), ...markdown(text)); }
          if (ev.type === "result") append(clear(output), ...show(task, ev));
        }, controller.signal);
      } else {
        const data = await api(`/v1/${task.name}`, { method: "POST", body });
        append(clear(output), ...(Array.isArray(data) ? data.flatMap((d) => show(task, d)) : show(task, data)));
      }
      announce(`${task.name} finished`);
    } catch (error) {
      if (error.name !== "AbortError") append(clear(output), errorBox(error));
    } finally {
      submit.disabled = false;
      output.setAttribute("aria-busy", "false");
      controller = null;
    }
  });
  form.querySelector("textarea, input, select")?.focus();
  return () => controller && controller.abort();
}
