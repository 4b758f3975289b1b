// Chat: conversations kept by plait (listed, reopened), answers streamed token by token, Stop, the model
// and the system prompt per conversation. Answers are Markdown, rendered safely.

import { api, stream } from "../api.js";
import { announce, append, clear, errorBox, field, h, when } from "../dom.js";
import { markdown } from "../markdown.js";

export async function render(main, params) {
  const state = { id: params[0] ? Number(params[0]) : null, controller: null, models: [], conversation: null };
  const list = h("ul", { class: "conversations", "aria-label": "Conversations" });
  const messages = h("div", { class: "messages", "aria-live": "polite", "aria-busy": "false" });
  const modelSelect = h("select", { name: "model" });
  const system = h("textarea", { rows: 2, placeholder: "e.g. Answer in French.", name: "system" });
  const input = h("textarea", { rows: 3, name: "message", placeholder: "Ask anything. Enter sends, Shift+Enter adds a line.",
    "aria-label": "Your message" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const stop = h("button", { type: "button", hidden: true }, "Stop");
  const status = h("p", { class: "muted status" });
  const form = h("form", { class: "composer" }, input, h("div", { class: "row" }, send, stop, status));

  append(main, 
    h("div", { class: "split" },
      h("aside", { class: "side" },
        h("h1", {}, "Chat"),
        h("button", { type: "button", class: "primary", onclick: () => open(null) }, "New chat"),
        list),
      h("section", { class: "chat" },
        h("details", { class: "options" }, h("summary", {}, "Model and system prompt"),
          field("Model", modelSelect), field("System prompt", system, "Kept with this conversation")),
        messages, form)));

  async function loadList() {
    const all = await api("/v1/conversations");
    append(clear(list), ...all.map((c) => h("li", {},
      h("a", { href: `#/chat/${c.id}`, "aria-current": c.id === state.id ? "page" : null,
        onclick: (e) => { e.preventDefault(); open(c.id); } }, c.title || "New chat"),
      h("small", { class: "muted" }, when(c.updated_at)))));
    if (!all.length) append(list, h("li", { class: "muted" }, "No conversations yet."));
  }

  function bubble(role, content, extra = {}) {
    const body = h("div", { class: "body" }, ...markdown(content));
    const el = h("article", { class: `message ${role}` },
      h("h2", { class: "who" }, role === "user" ? "You" : (extra.model || "plait")), body,
      extra.stopped ? h("small", { class: "muted" }, "(stopped)") : null);
    append(messages, el);
    return { el, body };
  }

  async function open(id) {
    if (state.controller) state.controller.abort();
    state.id = id;
    history.replaceState(null, "", id ? `#/chat/${id}` : "#/chat");
    clear(messages);
    state.conversation = id ? await api(`/v1/conversations/${id}`) : null;
    system.value = state.conversation?.system || "";
    modelSelect.value = state.conversation?.model || modelSelect.dataset.default || "";
    for (const m of state.conversation?.messages || []) bubble(m.role, m.content, m);
    if (!id) append(messages, h("p", { class: "muted empty" }, "Start a conversation: it is kept on this machine."));
    await loadList();
    input.focus();
  }

  async function submit(event) {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || state.controller) return;
    if (!state.id) {
      const made = await api("/v1/conversations", { method: "POST",
        body: { model: modelSelect.value || null, system: system.value.trim() || null } });
      state.id = made.id;
      history.replaceState(null, "", `#/chat/${made.id}`);
      clear(messages);
    } else if ((state.conversation?.system || "") !== system.value.trim()
               || (state.conversation?.model || "") !== modelSelect.value) {
      state.conversation = await api(`/v1/conversations/${state.id}`, { method: "PATCH",
        body: { system: system.value.trim(), model: modelSelect.value } });
    }
    input.value = "";
    bubble("user", content);
    const answer = bubble("assistant", "", { model: modelSelect.value });
    let text = "";
    let painted = false;
    state.controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    messages.setAttribute("aria-busy", "true");
    status.textContent = "answering…";
    try {
      await stream(`/v1/conversations/${state.id}/reply`, { content, model: modelSelect.value || null },
        (ev) => {
          if (ev.type !== "delta") return;
          text += ev.text;
          if (!painted) { // repaint once a frame: Markdown is re-read as the text grows
            painted = true;
            requestAnimationFrame(() => { append(clear(answer.body), ...markdown(text)); painted = false;
              answer.el.scrollIntoView({ block: "end" }); });
          }
        }, state.controller.signal);
      status.textContent = "";
      announce("Answer complete");
    } catch (error) {
      if (error.name === "AbortError") {
        status.textContent = "stopped";
        append(answer.el, h("small", { class: "muted" }, "(stopped)"));
        announce("Answer stopped");
      } else {
        append(answer.el, errorBox(error));
        status.textContent = "";
      }
    } finally {
      // An answer of no words (the model stopped at once) says so, rather than leaving an empty bubble.
      append(clear(answer.body), ...(text.trim() ? markdown(text)
        : [h("p", { class: "muted" }, "(no answer: the model stopped before writing anything)")]));
      state.controller = null;
      send.disabled = false;
      stop.hidden = true;
      messages.setAttribute("aria-busy", "false");
      loadList();
      input.focus();
    }
  }

  form.addEventListener("submit", submit);
  stop.addEventListener("click", () => state.controller && state.controller.abort());
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    if (e.key === "Escape" && state.controller) state.controller.abort();
  });

  try {
    const catalog = await api("/v1/catalog");
    const session = await api("/v1/settings").catch(() => null);
    const chatModels = catalog.filter((m) => m.capabilities.includes("chat"));
    const fallback = session?.chat_model?.value;
    modelSelect.dataset.default = fallback || "";
    append(modelSelect, ...chatModels.map((m) => h("option", { value: m.name },
      `${m.name}${m.status === "remote" ? " (remote)" : ""}`)));
    await open(state.id);
  } catch (error) {
    append(main, errorBox(error));
  }
  return () => state.controller && state.controller.abort();
}
