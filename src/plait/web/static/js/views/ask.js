// Ask and search over the personal index. An answer streams with its numbered sources; a citation opens
// its passage with the question's words marked and where it comes from. "Not in your data" is said as such.

import { api, stream } from "../api.js";
import { announce, append, clear, errorBox, field, h, highlighted, spans } from "../dom.js";
import { markdown } from "../markdown.js";

const STOP = new Set("the a an and or of to in on at for from with by is are was were be what who when where how why which does do did it this that about".split(" "));

function questionWords(text) {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w && !STOP.has(w));
}

export async function render(main) {
  let controller = null;
  const question = h("input", { type: "search", name: "question", required: true, autocomplete: "off",
    placeholder: "What did Anna say about the budget?" });
  const collection = h("select", { name: "collection" }, h("option", { value: "" }, "all collections"));
  const kind = h("input", { name: "kind", placeholder: "email, pdf, md…", size: 10 });
  const after = h("input", { type: "date", name: "after" });
  const before = h("input", { type: "date", name: "before" });
  const sender = h("input", { name: "sender", placeholder: "a name or address", size: 14 });
  const ask = h("button", { type: "submit", class: "primary", value: "ask" }, "Ask");
  const search = h("button", { type: "submit", value: "search" }, "Search");
  const result = h("section", { class: "result", "aria-live": "polite" });
  const passage = h("section", { class: "passage", "aria-label": "Source passage", hidden: true });
  const form = h("form", { class: "ask" },
    field("Question or words", question),
    h("details", { class: "filters" }, h("summary", {}, "Filters"),
      h("div", { class: "row wrap" }, field("Collection", collection), field("Kind", kind),
        field("After", after), field("Before", before), field("Sender", sender))),
    h("div", { class: "row" }, ask, search));
  append(main, h("h1", {}, "Ask & search"),
    h("p", { class: "muted" }, "Answers come from your indexed files and mail, with the passages they rest on."),
    form, h("div", { class: "split wide" }, result, passage));

  try {
    const status = await api("/v1/index");
    append(collection, ...status.collections.map((c) => h("option", { value: c.name }, c.name)));
    if (!status.chunks) {
      append(result, h("p", { class: "notice" }, "Your index is empty: add a folder or a mailbox under ",
        h("a", { href: "#/index" }, "Index"), " first."));
    }
  } catch (error) {
    append(result, errorBox(error));
  }

  function filters() {
    const f = {};
    if (collection.value) f.collections = [collection.value];
    if (kind.value.trim()) f.kinds = kind.value.split(/[\s,]+/).filter(Boolean);
    if (after.value) f.after = after.value;
    if (before.value) f.before = before.value;
    if (sender.value.trim()) f.sender = sender.value.trim();
    return Object.keys(f).length ? f : null;
  }

  async function openPassage(chunkId, words) {
    passage.hidden = false;
    append(clear(passage), h("p", { class: "muted" }, "Loading the passage…"));
    try {
      const p = await api(`/v1/index/passages/${chunkId}`);
      const d = p.document;
      const about = [d.kind, (d.date || "").slice(0, 10), d.sender].filter(Boolean).join(" · ");
      const whole = h("button", { type: "button" }, "Show the whole document");
      append(clear(passage), 
        h("h2", { tabindex: "-1" }, d.title || d.source.split("/").pop()),
        h("p", { class: "muted" }, about),
        h("p", {}, h("span", { class: "muted" }, "From "), h("code", { class: "path" }, d.source)),
        p.heading ? h("p", { class: "muted" }, p.heading) : null,
        ...p.before.map((t) => h("p", { class: "context" }, t)),
        h("blockquote", { class: "cited" }, ...highlighted(p.text, words)),
        ...p.after.map((t) => h("p", { class: "context" }, t)),
        h("div", { class: "row" }, whole,
          h("button", { type: "button", onclick: () => { passage.hidden = true; } }, "Close")));
      whole.addEventListener("click", async () => {
        const doc = await api(`/v1/index/documents/${d.id}`);
        append(passage, h("article", { class: "document" }, ...doc.passages.map((t) => h("p", {}, ...highlighted(t, words)))));
      });
      passage.querySelector("h2").focus();
    } catch (error) {
      append(clear(passage), errorBox(error));
    }
  }

  function sourcesList(sources, words) {
    return h("ol", { class: "sources" }, ...sources.map((s) => h("li", { id: `source-${s.number}` },
      h("button", { type: "button", class: "link", onclick: () => openPassage(s.chunk_id, words) },
        s.title || s.source.split("/").pop()),
      h("small", { class: "muted" }, " ", [s.kind, (s.date || "").slice(0, 10), s.sender].filter(Boolean).join(" · ")),
      h("p", { class: "excerpt" }, ...highlighted(s.excerpt, words)))));
  }

  async function runAsk(text) {
    const words = questionWords(text);
    let sources = [];
    let answerText = "";
    const answer = h("div", { class: "answer" });
    const cite = (numbers) => h("span", { class: "cites" }, ...numbers.map((n) => h("button", {
      type: "button", class: "cite", "aria-label": `Open source ${n}`,
      onclick: () => { const s = sources.find((x) => x.number === n); if (s) openPassage(s.chunk_id, words); },
    }, `[${n}]`)));
    append(clear(result), h("h2", {}, "Answer"), answer, h("p", { class: "muted", role: "status" }, "searching…"));
    result.setAttribute("aria-busy", "true");
    controller = new AbortController();
    try {
      await stream("/v1/ask", { question: text, filters: filters() }, (ev) => {
        if (ev.type === "sources") {
          sources = ev.sources;
          result.lastChild.textContent = sources.length ? "answering…" : "";
          if (sources.length) append(result, h("h2", {}, "Sources"), sourcesList(sources, words));
        } else if (ev.type === "delta") {
          answerText += ev.text;
          append(clear(answer), ...markdown(answerText, { cite }));
        } else if (ev.type === "result") {
          result.querySelector("[role=status]").textContent = "";
          if (!ev.found) {
            append(clear(answer), h("p", { class: "notice" }, "Not in your data: nothing in your index is close ",
              "enough to this question, so no answer was made up."));
          }
          const unsupported = (ev.attributions || []).filter((a) => a.source === null).length;
          if (ev.found && unsupported) {
            append(answer, h("p", { class: "warning" }, `${unsupported} of ${ev.attributions.length} sentence(s) of `,
              "this answer match no source closely: check them against the sources."));
          }
        }
      }, controller.signal);
      announce("Answer complete");
    } catch (error) {
      if (error.name !== "AbortError") append(result, errorBox(error));
    } finally {
      controller = null;
      result.setAttribute("aria-busy", "false");
    }
  }

  async function runSearch(text) {
    const words = questionWords(text);
    append(clear(result), h("p", { class: "muted", role: "status" }, "searching…"));
    try {
      const found = await api("/v1/search", { method: "POST", body: { query: text, filters: filters(), k: 20 } });
      append(clear(result), h("h2", {}, `${found.hits.length} result(s)`));
      if (!found.hits.length) append(result, h("p", { class: "notice" }, "Nothing in your index matches."));
      append(result, h("ol", { class: "hits" }, ...found.hits.map((hit) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => openPassage(hit.chunk_id, words) },
          hit.title || hit.source.split("/").pop()),
        h("small", { class: "muted" }, " ", [hit.kind, (hit.date || "").slice(0, 10), hit.sender].filter(Boolean).join(" · ")),
        h("p", { class: "excerpt" }, ...spans(hit.snippet.text, hit.snippet.highlights))))));
      announce(`${found.hits.length} results`);
    } catch (error) {
      append(clear(result), errorBox(error));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) return;
    if (controller) controller.abort();
    passage.hidden = true;
    (event.submitter && event.submitter.value === "search" ? runSearch : runAsk)(text);
  });
  question.focus();
  return () => controller && controller.abort();
}
