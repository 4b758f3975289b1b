// The personal index: collections and their counts, adding a folder or mailbox with progress while it is
// read, the files skipped and why, removing a collection.

import { api } from "../api.js";
import { announce, append, clear, errorBox, field, h, size } from "../dom.js";

export async function render(main) {
  let polling = null;
  const paths = h("input", { name: "paths", required: true, placeholder: "~/Documents or ~/Mail/INBOX", size: 40 });
  const collectionName = h("input", { name: "collection", value: "default", required: true, size: 12 });
  const add = h("button", { type: "submit", class: "primary" }, "Add");
  const progress = h("div", { class: "progress-box", "aria-live": "polite" });
  const status = h("section", { class: "status" });
  const form = h("form", { class: "row wrap" }, field("Folder, file or mailbox (several: separate by ;)", paths),
    field("Collection", collectionName), add);
  append(main, h("h1", {}, "Index"),
    h("p", { class: "muted" }, "Files and mail plait can search and answer from. Adding a folder again ",
      "reads only what changed."),
    h("h2", {}, "Add"), form, progress, status);

  async function refresh() {
    try {
      const s = await api("/v1/index");
      append(clear(status), h("h2", {}, "Collections"),
        s.collections.length ? h("table", {},
          h("thead", {}, h("tr", {}, ...["Collection", "Folders", "Files", "Documents", "Passages", "Skipped", ""]
            .map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, ...s.collections.map((c) => h("tr", {},
            h("th", { scope: "row" }, c.name), h("td", {}, c.roots.join("; ")), h("td", {}, c.files),
            h("td", {}, c.documents), h("td", {}, c.chunks), h("td", {}, c.skipped),
            h("td", {}, h("button", { type: "button", "aria-label": `Remove collection ${c.name}`,
              onclick: () => remove(c.name) }, "Remove"))))))
          : h("p", { class: "muted" }, "Nothing indexed yet."),
        h("p", { class: "muted" }, `${s.documents} documents, ${s.chunks} passages; database ${size(s.database_bytes)}, `,
          `vectors ${size(s.vector_bytes)}; model ${s.embed_model || "(none yet)"}.`,
          s.pending ? ` ${s.pending} file(s) left unfinished by a stopped run (the next add finishes them).` : ""));
      const problems = [...s.skipped.map((x) => ({ ...x, state: "skipped" })), ...s.partial.map((x) => ({ ...x, state: "partly read" }))];
      if (problems.length) {
        append(status, h("h2", {}, `Skipped (${problems.length})`),
          h("ul", { class: "skipped" }, ...problems.map((p) => h("li", {}, h("code", {}, p.path), " ",
            h("span", { class: "muted" }, `${p.state}: ${p.reason}`)))));
      }
    } catch (error) {
      append(clear(status), errorBox(error));
    }
  }

  async function remove(name) {
    if (!confirm(`Remove collection ${name} from the index? (Your files are not touched.)`)) return;
    try {
      const r = await api(`/v1/index/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
      announce(`removed ${name}: ${r.files} files, ${r.chunks} passages`);
      refresh();
    } catch (error) {
      status.prepend(errorBox(error));
    }
  }

  function showJob(job) {
    const p = job.progress || {};
    const total = p.units_total || 0;
    const done = p.units_done || 0;
    const bar = h("progress", { max: total || 1, value: total ? done : 0, "aria-label": "Indexing progress" });
    const running = job.state === "running" || job.state === "queued";
    const lines = [h("p", {}, `${job.title}: ${job.state}${running && p.phase ? ` (${p.phase})` : ""}`), bar,
      h("p", { class: "muted" }, total ? `${done} of ${total} files` : "", p.chunks_embedded ? `, ${p.chunks_embedded} passages embedded` : "",
        p.current ? ` — ${p.current}` : "")];
    if (job.state === "done" && job.result) {
      const r = job.result;
      lines.push(h("p", { class: "ok" }, `Done: ${r.new} new, ${r.changed} changed, ${r.unchanged} unchanged, ${r.deleted} removed; `,
        `${r.chunks_added} passages added. ${r.skipped.length ? `${r.skipped.length} skipped (see below).` : ""}`));
    }
    if (job.state === "failed") lines.push(errorBox(job.error));
    append(clear(progress), ...lines);
  }

  async function poll(id) {
    try {
      const job = await api(`/v1/jobs/${id}`);
      showJob(job);
      if (job.state === "done" || job.state === "failed") {
        polling = null;
        add.disabled = false;
        announce(`indexing ${job.state}`);
        refresh();
        return;
      }
    } catch (error) {
      append(clear(progress), errorBox(error));
    }
    polling = setTimeout(() => poll(id), 500);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const list = paths.value.split(";").map((p) => p.trim()).filter(Boolean);
    if (!list.length) return;
    add.disabled = true;
    try {
      const job = await api("/v1/index/add", { method: "POST", body: { paths: list, collection: collectionName.value.trim() } });
      showJob(job);
      poll(job.id);
    } catch (error) {
      add.disabled = false;
      append(clear(progress), errorBox(error));
    }
  });
  await refresh();
  return () => polling && clearTimeout(polling);
}
