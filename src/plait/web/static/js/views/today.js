// Today: what plait's workflows made for this day. The inbox digest, meeting proposals to accept or
// decline, the feed reading list, reports; each entry says where it came from. With nothing yet, it says
// which workflow to enable and how.

import { api } from "../api.js";
import { announce, append, clear, errorBox, h, when } from "../dom.js";
import { markdown } from "../markdown.js";

const TITLES = { "inbox-triage": "Inbox", "meeting-requests": "Meeting requests", "feed-reader": "Reading list",
  "weekly-report": "Weekly report", "documents-summaries": "New documents" };

function safeLink(link) {
  return typeof link === "string" && /^https?:\/\//.test(link)
    ? h("a", { href: link, target: "_blank", rel: "noopener noreferrer nofollow" }, "open") : null;
}

function digestEntry(entry) {
  const time = entry.time ? new Date(entry.time) : null;
  return h("li", { class: "entry" },
    h("h3", {}, entry.heading || entry.item_key),
    h("p", { class: "muted" }, [entry.group, time && !Number.isNaN(time.getTime()) ? time.toLocaleString() : null,
      typeof entry.value === "number" ? `score ${entry.value.toFixed(2)}` : null].filter(Boolean).join(" · ")),
    entry.text ? h("div", { class: "text" }, ...markdown(entry.text)) : null,
    h("p", { class: "source" }, h("small", { class: "muted" }, "from "), h("code", {}, entry.link && !safeLink(entry.link) ? entry.link : entry.item_key),
      " ", safeLink(entry.link)));
}

export async function render(main) {
  const body = h("div", { class: "today" });
  append(main, h("h1", {}, "Today"), body);

  async function decide(section, entry, decision) {
    try {
      const r = await api("/v1/today/decisions", { method: "POST",
        body: { workflow: section.workflow, sink: section.sink, item_key: entry.item_key, decision } });
      announce(decision === "accept" ? `accepted; written to ${r.calendar}` : "declined");
      load();
    } catch (error) {
      body.prepend(errorBox(error));
    }
  }

  function proposal(section, entry) {
    const start = new Date(entry.start);
    const end = new Date(entry.end);
    return h("li", { class: `entry ${entry.decision || ""}` },
      h("h3", {}, entry.summary),
      h("p", {}, `${start.toLocaleString(undefined, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" })}`,
        `–${end.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}`),
      entry.description ? h("p", { class: "muted" }, entry.description) : null,
      entry.decision ? h("p", { class: `badge ${entry.decision}` }, entry.decision === "accept" ? "accepted" : "declined")
        : h("div", { class: "row" },
          h("button", { type: "button", class: "primary", onclick: () => decide(section, entry, "accept") }, "Accept"),
          h("button", { type: "button", onclick: () => decide(section, entry, "decline") }, "Decline")));
  }

  async function emptyState(enabled) {
    const order = ["inbox-triage", "meeting-requests", "feed-reader", "weekly-report", "documents-summaries"];
    const rank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
    const bundled = (await api("/v1/workflows/bundled").catch(() => [])).sort((a, b) => rank(a.name) - rank(b.name));
    append(body, h("section", { class: "empty" },
      h("p", {}, enabled.length ? "Your workflows have made nothing yet today." : "Nothing here yet: Today shows what plait's workflows make for you."),
      h("p", {}, "Start with the inbox: point it at your mail folder (a Maildir) by setting ", h("code", {}, "PLAIT_MAILDIR"),
        " before ", h("code", {}, "plait up"), ", then enable it:"),
      h("ul", { class: "cards" }, ...bundled.filter((b) => !b.enabled).map((b) => h("li", {}, h("strong", {}, b.name), h("p", {}, b.description),
        h("button", { type: "button", onclick: async () => {
          await api(`/v1/workflows/${encodeURIComponent(b.name)}/enable`, { method: "POST" });
          announce(`${b.name} enabled`);
          load();
        } }, "Enable")))),
      h("p", { class: "muted" }, "Or from a terminal: ", h("code", {}, "plait workflows enable inbox-triage"), ".")));
  }

  async function load() {
    try {
      const data = await api("/v1/today");
      clear(body);
      if (!data.sections.length) return emptyState(data.enabled);
      for (const section of data.sections) {
        const title = TITLES[section.workflow] || section.workflow;
        append(body, h("section", { class: "day-section" },
          h("h2", {}, title, h("small", { class: "muted" }, ` ${section.kind === "ics" ? "proposals" : section.target}`)),
          h("ul", { class: "entries" }, ...section.entries.map((e) => (section.kind === "ics" ? proposal(section, e) : digestEntry(e))))));
      }
      append(body, h("p", { class: "muted" }, "Updated ", when(Date.now() / 1000), "."));
    } catch (error) {
      append(clear(body), errorBox(error));
    }
  }
  await load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 30000);
  return () => clearInterval(timer);
}
