// Markdown from models and workflows, rendered safely: the text is read line by line and built into
// elements with text nodes, so no HTML in it ever reaches the page. Links keep only http(s) addresses and
// open apart from the page; citations like [2] or [2:5] (source 2, its sentence 5) can become buttons
// (``cite``, given [source, sentence-or-null] pairs).

import { append, h } from "./dom.js";

const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\((https?:\/\/[^\s)]+)\))|(\[\d+(?::\d+)?(?:\s*[,;]\s*\d+(?::\d+)?)*\])/g;

function inline(text, cite) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    out.push(text.slice(last, m.index));
    const [whole] = m;
    if (m[1]) out.push(h("code", {}, whole.slice(1, -1)));
    else if (m[2]) out.push(h("strong", {}, ...inline(whole.slice(2, -2), cite)));
    else if (m[3]) out.push(h("em", {}, ...inline(whole.slice(1, -1), cite)));
    else if (m[4]) {
      const label = whole.slice(1, whole.indexOf("]("));
      out.push(h("a", { href: m[5], target: "_blank", rel: "noopener noreferrer nofollow" }, label));
    } else if (m[6]) {
      const pairs = whole.slice(1, -1).split(/[,;]/).map((c) => {
        const [source, sentence] = c.trim().split(":").map(Number);
        return [source, Number.isInteger(sentence) ? sentence : null];
      });
      out.push(cite ? cite(pairs) : whole);
    }
    last = m.index + whole.length;
  }
  out.push(text.slice(last));
  return out;
}

// A Markdown text as a list of block elements (paragraphs, headings, lists, quotes, code).
export function markdown(text, { cite } = {}) {
  const blocks = [];
  const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;

  const flush = () => {
    if (paragraph.length) blocks.push(h("p", {}, ...inline(paragraph.join(" "), cite)));
    paragraph = [];
    list = null;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*```/);
    if (fence) {
      flush();
      const code = [];
      for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
      blocks.push(h("pre", {}, h("code", {}, code.join("\n"))));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      const level = Math.min(6, heading[1].length + 2); // the view's own title is the h1/h2
      blocks.push(h(`h${level}`, {}, ...inline(heading[2], cite)));
      continue;
    }
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (item) {
      if (paragraph.length) flush();
      const ordered = /\d/.test(item[1]);
      if (!list || list.ordered !== ordered) {
        list = { ordered, el: h(ordered ? "ol" : "ul") };
        blocks.push(list.el);
      }
      append(list.el, h("li", {}, ...inline(item[2], cite)));
      continue;
    }
    const quote = line.match(/^\s*>\s?(.*)$/);
    if (quote) {
      flush();
      blocks.push(h("blockquote", {}, ...inline(quote[1], cite)));
      continue;
    }
    if (!line.trim()) {
      flush();
      continue;
    }
    if (list && /^\s{2,}/.test(line)) {
      append(list.el.lastChild, " ", ...inline(line.trim(), cite));
      continue;
    }
    list = null;
    paragraph.push(line.trim());
  }
  flush();
  return blocks;
}
