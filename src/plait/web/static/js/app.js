// The page: one view at a time, chosen by the address (#/chat, #/ask…), so the browser's back button and
// bookmarks work. Each view module exports render(main, params) and may return a function that stops what
// it started (a stream, a poll) when the person moves on.

import { api, ApiError, setCsrf } from "./api.js";
import { append, clear, errorBox, h } from "./dom.js";

const VIEWS = {
  today: () => import("./views/today.js"),
  chat: () => import("./views/chat.js"),
  ask: () => import("./views/ask.js"),
  index: () => import("./views/index.js"),
  workflows: () => import("./views/workflows.js"),
  tasks: () => import("./views/tasks.js"),
  models: () => import("./views/models.js"),
  settings: () => import("./views/settings.js"),
};

const main = document.getElementById("view");
let leave = null;

function route() {
  const [, name = "today", rest = ""] = location.hash.match(/^#\/([a-z]+)\/?(.*)$/) || [];
  return { name: VIEWS[name] ? name : "today", params: rest.split("/").filter(Boolean).map(decodeURIComponent) };
}

async function show() {
  const { name, params } = route();
  if (leave) leave();
  leave = null;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  try {
    const view = await VIEWS[name]();
    leave = (await view.render(main, params)) || null;
  } catch (error) {
    append(main, errorBox(error));
  }
  const title = main.querySelector("h1");
  document.title = title ? `${title.textContent} · plait` : "plait";
  // A view that put the focus somewhere useful (the question box) keeps it; else the view itself gets it.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

function signedOut() {
  append(clear(main), 
    h("section", { class: "signin" },
      h("h1", {}, "Sign in to plait"),
      h("p", {}, "This page opens from a one-time link. On this machine, run:"),
      h("pre", {}, h("code", {}, "plait open")),
      h("p", { class: "muted" }, "(or use the link `plait up` printed when it started). A link works once; a ",
        "signed-in browser stays signed in for 30 days.")));
}

async function start() {
  try {
    const session = await api("/v1/session");
    setCsrf(session.csrf);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signedOut();
    append(clear(main), errorBox(error));
    return;
  }
  window.addEventListener("hashchange", show);
  show();
}

start();
