// Models: the catalog (size, backend, status, where each came from), adding a GGUF file or an
// OpenAI-compatible endpoint, tuning runs with their learning curves and confusion matrices, and
// compression reports with their charts.

import { api } from "../api.js";
import { announce, append, clear, errorBox, field, h, size, when } from "../dom.js";

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows));
}

function num(value) {
  return typeof value === "number" ? (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(3)) : (value ?? "–");
}

export async function render(main, params) {
  const catalogBox = h("section");
  const runsBox = h("section");
  const reportsBox = h("section");
  const detail = h("section", { class: "detail", "aria-live": "polite" });
  append(main, h("h1", {}, "Models"), catalogBox, detail, runsBox, reportsBox);

  async function showRun(id) {
    try {
      const run = await api(`/v1/runs/${encodeURIComponent(id)}`);
      const scalars = Object.entries(run.metrics || {}).filter(([, v]) => typeof v === "number");
      append(clear(detail), h("h2", { tabindex: "-1" }, `Run ${run.name} (${run.method}) → ${run.model || "not registered"}`),
        h("p", { class: "muted" }, `${run.status}; ${run.task}; ${when(run.started_at)}; data ${run.data_source}`),
        scalars.length ? h("p", {}, scalars.map(([k, v]) => `${k} ${num(v)}`).join(" · ")) : null,
        ...run.files.filter((f) => f.endsWith(".png")).map((f) => h("figure", {},
          h("img", { src: `/v1/runs/${encodeURIComponent(run.id)}/files/${f}`, alt: f.replace(/[_-]/g, " ").replace(".png", "") }),
          h("figcaption", {}, f.replace(/[_-]/g, " ").replace(".png", "")))));
      detail.querySelector("h2").focus();
    } catch (error) {
      append(clear(detail), errorBox(error));
    }
  }

  async function load() {
    try {
      const catalog = await api("/v1/catalog");
      const name = h("input", { name: "name", required: true, placeholder: "mistral" });
      const source = h("input", { name: "source", required: true, size: 40,
        placeholder: "~/models/model.gguf or http://localhost:11434/v1" });
      const remote = h("input", { name: "remote_model", placeholder: "llama3 (for an endpoint)" });
      const keyEnv = h("input", { name: "api_key_env", placeholder: "OPENAI_API_KEY" });
      const add = h("form", { class: "row wrap" }, field("Name", name), field("File, folder or endpoint", source),
        field("Model on the server", remote), field("Key in environment variable", keyEnv),
        h("button", { type: "submit", class: "primary" }, "Add"));
      add.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await api("/v1/catalog", { method: "POST", body: { name: name.value.trim(), source: source.value.trim(),
            remote_model: remote.value.trim() || null, api_key_env: keyEnv.value.trim() || null } });
          announce(`${name.value} added`);
          load();
        } catch (error) {
          append(add, errorBox(error));
        }
      });
      append(clear(catalogBox), h("h2", {}, "Catalog"),
        table(["Name", "Can", "Backend", "Size", "Status", "From"], catalog.map((m) => h("tr", {},
          h("th", { scope: "row" }, m.name, m.loaded ? h("span", { class: "badge done" }, "loaded") : null),
          h("td", {}, m.capabilities.join(", ")), h("td", {}, m.backend), h("td", {}, size(m.size_bytes)),
          h("td", {}, m.status), h("td", { class: "path" }, m.location)))),
        h("h3", {}, "Add a model"), add);

      const runs = await api("/v1/runs");
      append(clear(runsBox), h("h2", {}, "Tuning runs"), runs.length
        ? table(["Run", "Method", "Status", "Model", "Started", ""], runs.map((r) => h("tr", {},
          h("th", { scope: "row" }, r.name), h("td", {}, r.method), h("td", {}, r.status), h("td", {}, r.model || "–"),
          h("td", {}, when(r.started_at)), h("td", {}, h("button", { type: "button", onclick: () => showRun(r.id) }, "Show")))))
        : h("p", { class: "muted" }, "No runs yet: ", h("code", {}, "plait tune NAME --data examples.csv"), "."));

      const reports = await api("/v1/reports");
      append(clear(reportsBox), h("h2", {}, "Compression reports"), reports.length ? h("div", {}, ...reports.map((rep) => {
        const rows = rep.report.rows || [];
        return h("article", { class: "report" },
          h("h3", {}, rep.report.model || rep.name, h("small", { class: "muted" }, ` ${rep.name}`)),
          h("p", { class: "muted" }, `${rep.report.primary_metric} on ${rep.report.eval?.size ?? "?"} items of `,
            `${rep.report.eval?.source ?? "?"}; latency at batch 1`),
          table(["Variant", "MB", "p50 ms", "Throughput", rep.report.primary_metric || "quality", "vs original"],
            rows.map((r) => h("tr", {},
              h("th", { scope: "row" }, r.label), h("td", {}, num(r.size_mb)), h("td", {}, num(r.latency_ms_p50)),
              h("td", {}, `${num(r.throughput)} ${r.throughput_unit || ""}`), h("td", {}, num(r.quality?.[rep.report.primary_metric])),
              h("td", {}, r.vs_original ? Object.entries(r.vs_original).filter(([, v]) => v !== null)
                .map(([k, v]) => (k.endsWith("_x") ? `${k.slice(0, -2)} ${Number(v).toFixed(2)}×` : `${k.replace("_", " ")} ${num(v)}`))
                .join(", ") : "")))),
          rep.files.includes("chart.png") ? h("figure", {}, h("img", { src: `/v1/reports/${encodeURIComponent(rep.name)}/chart.png`,
            alt: `Size, speed and quality of the variants of ${rep.report.model || rep.name}` }), h("figcaption", {}, "Size, speed and quality")) : null,
          rep.files.includes("report.html") ? h("p", {}, h("a", { href: `/v1/reports/${encodeURIComponent(rep.name)}/report.html`, target: "_blank", rel: "noopener" }, "Full report")) : null);
      })) : h("p", { class: "muted" }, "No reports yet: ", h("code", {}, "plait compress MODEL"), "."));
      if (params[0] === "run" && params[1]) showRun(params[1]);
    } catch (error) {
      append(main, errorBox(error));
    }
  }
  await load();
  return null;
}
