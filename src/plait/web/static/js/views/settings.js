// Settings and keys: every setting in effect and where it comes from (changes apply when plait starts
// again), and the API keys other programs use: create (the secret is shown once), revoke.

import { api } from "../api.js";
import { announce, append, clear, errorBox, field, h } from "../dom.js";

const SCOPES = ["chat", "tasks", "index", "admin"];

export async function render(main) {
  const settingsBox = h("section");
  const keysBox = h("section");
  append(main, h("h1", {}, "Settings"), settingsBox, keysBox);

  async function load() {
    try {
      const settings = await api("/v1/settings");
      append(clear(settingsBox), h("h2", {}, "Settings"),
        h("p", { class: "muted" }, "Saved to config.toml; a change applies when plait starts again."),
        h("table", {}, h("thead", {}, h("tr", {}, ...["Setting", "In effect", "From", "Change"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, ...Object.entries(settings).map(([name, s]) => {
            const input = h("input", { name, value: typeof s.saved === "object" ? JSON.stringify(s.saved) : String(s.saved ?? ""),
              "aria-label": `New value of ${name}`, size: 18 });
            const save = h("button", { type: "button", onclick: async () => {
              try {
                await api(`/v1/settings/${encodeURIComponent(name)}`, { method: "PUT", body: { value: input.value } });
                announce(`${name} saved; applies at the next start`);
                load();
              } catch (error) { save.after(errorBox(error)); }
            } }, "Save");
            return h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "path" }, JSON.stringify(s.value)),
              h("td", {}, s.source), name === "home" ? h("td", { class: "muted" }, "PLAIT_HOME or --home")
                : h("td", { class: "row" }, input, save));
          }))));
      const keyName = h("input", { name: "key-name", required: true, placeholder: "editor-plugin" });
      const boxes = SCOPES.map((s) => h("label", { class: "check" }, h("input", { type: "checkbox", value: s, checked: s !== "admin" }), ` ${s}`));
      const rate = h("input", { type: "number", min: 0, name: "rate", placeholder: "no limit", size: 8 });
      const shown = h("div", { "aria-live": "polite" });
      const create = h("form", { class: "row wrap" }, field("Name", keyName),
        h("fieldset", {}, h("legend", {}, "Scopes"), ...boxes), field("Requests per minute", rate),
        h("button", { type: "submit", class: "primary" }, "Create"));
      create.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          const made = await api("/v1/keys", { method: "POST", body: { name: keyName.value.trim(),
            scopes: boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value),
            rate_limit: rate.value ? Number(rate.value) : null } });
          append(clear(shown), h("p", { class: "notice" }, "The key, shown this once (copy it now):"),
            h("pre", {}, h("code", { class: "secret" }, made.secret)));
          keyName.value = "";
          loadKeys();
        } catch (error) {
          append(clear(shown), errorBox(error));
        }
      });
      async function loadKeys() {
        const current = await api("/v1/keys");
        append(clear(table), h("thead", {}, h("tr", {}, ...["Name", "Key starts", "Scopes", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, ...current.map((k) => h("tr", { class: k.revoked_at ? "revoked" : "" },
            h("th", { scope: "row" }, k.name), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.scopes.join(", ")),
            h("td", {}, k.created_at), h("td", {}, k.last_used_at || "–"),
            h("td", {}, k.revoked_at ? `revoked ${k.revoked_at}` : h("button", { type: "button", "aria-label": `Revoke ${k.name}`,
              onclick: async () => { if (confirm(`Revoke ${k.name}? Programs using it stop working.`)) {
                await api(`/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" }); loadKeys(); } } }, "Revoke"))))));
      }
      const table = h("table");
      append(clear(keysBox), h("h2", {}, "API keys"), h("p", { class: "muted" }, "Keys let other programs use plait's API."),
        table, h("h3", {}, "New key"), create, shown);
      await loadKeys();
    } catch (error) {
      append(main, errorBox(error));
    }
  }
  await load();
  return null;
}
