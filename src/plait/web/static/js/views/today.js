// Today: what plait's workflows made for this day. The inbox digest (threads, what needs the person first,
// what senders ask and by when, labels that can be corrected), meeting proposals to accept or decline, the
// feed reading list, reports; each entry says where it came from. With nothing yet, it says which workflow
// to enable and how.

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

function asDate(value) {
  const d = value ? new Date(value) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
}

// One thread of a mail digest: its subject, what it needs, who wrote, the gist, the asks and dates, and
// a label the person can correct (the correction becomes an example for `plait tune`).
function thread(t, labels, correct) {
  const latest = asDate(t.latest);
  const last = t.messages[t.messages.length - 1];
  const choose = h("select", { "aria-label": `Label of “${t.subject}”` },
    ...[...new Set([...labels, t.label])].map((l) => h("option", { value: l, selected: l === t.label }, l)));
  choose.addEventListener("change", () => correct(last.key, choose.value, t.subject));
  return h("li", { class: `entry thread need-${t.need}` },
    h("h3", {}, t.subject),
    h("p", { class: "muted" }, h("span", { class: `badge ${t.unsure ? "pending" : ""}` }, t.unsure ? "unsure" : t.label),
      [t.from.join(", "), latest ? latest.toLocaleString() : null,
        `${t.new} new${t.earlier ? `, ${t.earlier} earlier` : ""}`].filter(Boolean).join(" · ")),
    t.about ? h("p", {}, t.about) : null,
    t.asks.length ? h("ul", { class: "asks" }, ...t.asks.map((a) => h("li", {}, h("strong", {}, "Asks: "), a.action,
      a.due ? h("span", { class: "badge pending" }, `by ${a.due}`) : null))) : null,
    t.dates.length ? h("p", { class: "muted" }, "Dates: ", t.dates.map((d) => `${d.text} (${d.iso})`).join(", ")) : null,
    t.why.length ? h("p", { class: "muted" }, "Urgent because of: ", t.why.join(", ")) : null,
    h("div", { class: "row source" }, h("small", { class: "muted" }, "from mail "), h("code", {}, last.key),
      " ", safeLink(last.link), h("label", {}, h("small", { class: "muted" }, " label "), choose)));
}

export async function render(main) {
  const body = h("div", { class: "today", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading what your workflows made…"));
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

  async function correct(workflow, key, label, subject) {
    try {
      await api(`/v1/workflows/${encodeURIComponent(workflow)}/corrections`, { method: "POST", body: { key, label } });
      announce(`“${subject}” is ${label} from now on`);
    } catch (error) {
      body.prepend(errorBox(error));
    }
  }

  // A mail digest is shown from the digest the workflow wrote (threads across the day and the day before);
  // before the first one is written, from its entries like any digest.
  async function mailDigest(section) {
    const name = encodeURIComponent(section.workflow);
    try {
      const [digest, corrections] = await Promise.all([api(`/v1/workflows/${name}/digest?period=latest`),
        api(`/v1/workflows/${name}/corrections`)]);
      const counts = Object.entries(digest.labels).map(([l, n]) => `${n} ${l}`).join(" · ");
      return [h("p", { class: "muted" }, `${digest.messages} message(s) in ${digest.threads.length} thread(s): ${counts}`),
        h("ul", { class: "entries" }, ...digest.threads.map((t) => thread(t, corrections.labels,
          (key, label, subject) => correct(section.workflow, key, label, subject))))];
    } catch (error) {
      if (error.status !== 404) throw error;
      return [h("ul", { class: "entries" }, ...section.entries.map(digestEntry))];
    }
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

  // The new content is built first and swapped in at once, so a refresh does not blank the view.
  async function load() {
    try {
      const data = await api("/v1/today");
      if (!data.sections.length) {
        clear(body);
        await emptyState(data.enabled);
        return;
      }
      const sections = [];
      for (const section of data.sections) {
        const title = TITLES[section.workflow] || section.workflow;
        const entries = section.kind === "mail-digest" ? await mailDigest(section)
          : [h("ul", { class: "entries" }, ...section.entries.map((e) => (section.kind === "ics" ? proposal(section, e) : digestEntry(e))))];
        sections.push(h("section", { class: "day-section" },
          h("h2", {}, title, h("small", { class: "muted" }, ` ${section.kind === "ics" ? "proposals" : section.target}`)),
          ...entries));
      }
      append(clear(body), ...sections, h("p", { class: "muted" }, "Updated ", when(Date.now() / 1000), "."));
    } catch (error) {
      append(clear(body), errorBox(error));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }
  await load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 30000);
  return () => clearInterval(timer);
}
