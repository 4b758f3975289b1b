// Workflows: the enabled ones with live progress, history, failed items with their errors and Retry, the
// files they made; the bundled ones to enable; run now, enable, disable.

import { api } from "../api.js";
import { announce, append, clear, errorBox, h, size, when } from "../dom.js";

const STATES = ["pending", "running", "done", "failed", "skipped"];

export async function render(main, params) {
  let timer = null;
  const list = h("section", { class: "workflows" });
  const detail = h("section", { class: "detail", "aria-live": "polite" });
  const bundledBox = h("section", { class: "bundled" });
  append(main, h("h1", {}, "Workflows"),
    h("p", { class: "muted" }, "Each runs on its trigger while plait is up; every item's progress is kept, so a ",
      "stopped run resumes without losing or repeating work."),
    h("div", { class: "split wide" }, list, detail), bundledBox);
  let selected = params[0] || null;

  async function act(path, body, what) {
    try {
      await api(path, { method: "POST", body });
      announce(what);
      await refresh();
    } catch (error) {
      detail.prepend(errorBox(error));
    }
  }

  function counts(st) {
    return h("span", { class: "counts" }, ...STATES.filter((s) => st.counts[s]).map((s) =>
      h("span", { class: `badge ${s}` }, `${st.counts[s]} ${s}`)));
  }

  async function showDetail(name) {
    const [st, outputs, failed] = await Promise.all([api(`/v1/workflows/${encodeURIComponent(name)}`),
      api(`/v1/workflows/${encodeURIComponent(name)}/outputs`).catch(() => ({ files: [] })),
      api(`/v1/workflows/${encodeURIComponent(name)}/items?state=failed&limit=50`)]);
    append(clear(detail), 
      h("h2", {}, name),
      st.extra?.description ? h("p", { class: "muted" }, st.extra.description) : null,
      st.problem ? h("p", { class: "error" }, st.problem) : null,
      h("p", {}, counts(st), st.running ? h("span", { class: "badge running" }, "running now") : null),
      h("progress", { max: 1, value: st.progress, "aria-label": `${name}: share of items finished` }),
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", onclick: () => act(`/v1/workflows/${encodeURIComponent(name)}/run`, { items: [] }, "woken: it reads its trigger now") }, "Run now"),
        failed.length ? h("button", { type: "button", onclick: () => act(`/v1/workflows/${encodeURIComponent(name)}/retry`, {}, "failed items retried") }, `Retry all ${failed.length} failed`) : null,
        st.enabled ? h("button", { type: "button", onclick: () => act(`/v1/workflows/${encodeURIComponent(name)}/disable`, undefined, "disabled") }, "Disable") : null),
      failed.length ? h("div", {}, h("h3", {}, "Failed items"), h("ul", { class: "failed" }, ...failed.map((item) => h("li", {},
        h("code", {}, item.key), " ", h("span", { class: "error-text" }, item.error || ""),
        h("small", { class: "muted" }, ` (${item.attempts} attempt(s))`), " ",
        h("button", { type: "button", onclick: () => act(`/v1/workflows/${encodeURIComponent(name)}/retry`, { keys: [item.key] }, `${item.key} retried`) }, "Retry"))))) : null,
      h("h3", {}, "History"),
      st.last_runs.length ? h("table", {}, h("thead", {}, h("tr", {}, ...["Started", "Kind", "Status", "Added", "Done", "Failed"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...st.last_runs.map((r) => h("tr", {}, h("td", {}, when(r.started_at)), h("td", {}, r.kind),
          h("td", {}, r.status), h("td", {}, r.items_added), h("td", {}, r.items_done), h("td", {}, r.items_failed)))))
        : h("p", { class: "muted" }, "No run yet."),
      h("h3", {}, "Files it made"),
      outputs.files.length ? h("ul", { class: "outputs" }, ...outputs.files.slice(0, 30).map((f) => h("li", {},
        h("a", { href: `/v1/workflows/${encodeURIComponent(name)}/outputs/${f.path.split("/").map(encodeURIComponent).join("/")}`,
          target: "_blank", rel: "noopener" }, f.path), h("small", { class: "muted" }, ` ${size(f.bytes)}, ${when(f.modified)}`))))
        : h("p", { class: "muted" }, "None yet."),
      outputs.folder ? h("p", { class: "muted" }, "In ", h("code", {}, outputs.folder)) : null);
  }

  async function refresh() {
    try {
      const all = await api("/v1/workflows");
      append(clear(list), h("h2", {}, "Enabled"), all.length ? h("ul", { class: "cards" }, ...all.map((st) => h("li", {},
        h("a", { href: `#/workflows/${encodeURIComponent(st.name)}`, "aria-current": st.name === selected ? "true" : null,
          onclick: (e) => { e.preventDefault(); selected = st.name; history.replaceState(null, "", `#/workflows/${encodeURIComponent(st.name)}`); refresh(); } },
          st.name), " ", counts(st), st.problem ? h("p", { class: "error-text" }, st.problem) : null)))
        : h("p", { class: "muted" }, "No workflow is enabled yet: enable one of plait's below."));
      if (!selected && all.length) selected = all[0].name;
      if (selected) await showDetail(selected);
      const bundled = await api("/v1/workflows/bundled");
      append(clear(bundledBox), h("h2", {}, "Workflows that come with plait"), h("ul", { class: "cards" }, ...bundled.map((b) => h("li", {},
        h("strong", {}, b.name), h("small", { class: "muted" }, ` (${b.trigger})`), h("p", {}, b.description),
        b.enabled ? h("span", { class: "badge done" }, "enabled")
          : h("button", { type: "button", onclick: () => act(`/v1/workflows/${encodeURIComponent(b.name)}/enable`, undefined, `${b.name} enabled`) }, "Enable")))));
    } catch (error) {
      append(clear(list), errorBox(error));
    }
  }

  await refresh();
  timer = setInterval(() => { if (selected && !document.hidden) showDetail(selected).catch(() => {}); }, 1500);
  return () => clearInterval(timer);
}
