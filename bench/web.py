"""The web page's speed, measured in a real browser (Debian's Chromium, headless, Playwright) against a real
plait server with the default models, next to the same requests made without a browser.

- page weight: every JS and CSS file the page loads (target: under 200 KB together);
- first paint: the browser's own first-contentful-paint of the signed-in page on loopback (target: under 1 s),
  cold (a new browser profile each time) and warm;
- time to first token: from pressing Enter in Chat to the first answer text on screen, against the time to
  the first delta event of the same request (same conversation route, prompt, greedy decoding) read with
  httpx; the difference is what the page itself adds.

    python bench/web.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_home, percentile, write_results  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PROMPTS = ["Name three fruits.", "Name three colours.", "Name three animals.", "Name three rivers.",
           "Name three trees.", "Name three cities.", "Name three tools.", "Name three birds."]
MAX_TOKENS = 24


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "mean": round(statistics.fmean(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import httpx
    from playwright.sync_api import sync_playwright
    from tests.servers import serve_in_thread

    from plait.runtime import Runtime
    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key
    from plait.settings import resolve_settings
    from plait.web.sessions import new_signin_token

    base = Path(tempfile.mkdtemp(prefix="plait-bench-web-"))
    home = make_home(base, "home")
    settings = resolve_settings(environ={}, home=home).settings
    runtime = Runtime(settings)
    runtime.pool.get(settings.chat_model)  # loaded before timing, as `plait up` preloads it
    app = create_app(settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), home)
    out: dict[str, object] = {"rounds": args.rounds, "model": settings.chat_model, "max_tokens": MAX_TOKENS}
    with serve_in_thread(app, key) as server, sync_playwright() as p:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)

        def signed_in_context() -> object:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            page.goto(f"{server.url}/signin?token={new_signin_token(runtime.store)}")
            page.wait_for_selector("main h1")
            return context, page

        # Page weight: every file the page can load (all its views), read from the browser's network log.
        context, page = signed_in_context()
        loaded: set[str] = set()
        page.on("requestfinished", lambda request: loaded.add(request.url))
        for view in ("today", "chat", "ask", "index", "workflows", "tasks", "models", "settings"):
            page.goto(f"{server.url}/#/{view}")
            page.wait_for_selector("main h1")
            page.wait_for_load_state("networkidle")
        context.close()
        files = sorted(u for u in loaded if u.endswith((".js", ".css")))
        weight = sum(len(httpx.get(u).content) for u in files)
        out["page_weight"] = {"files": len(files), "bytes": weight, "target_bytes": 200_000}

        # First paint, cold (a new profile: nothing cached) and warm (the same page loaded again).
        cold, warm = [], []
        for _ in range(args.rounds):
            context, page = signed_in_context()
            for series in (cold, warm):
                if series is cold:
                    page.goto(f"{server.url}/#/today")
                else:
                    page.reload()  # the same page again: its files now in the browser's cache
                page.wait_for_selector("main h1")
                paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
                series.append(float(paint))
            context.close()
        out["first_paint_ms"] = {"cold": _summary(cold), "warm": _summary(warm), "target_ms": 1000}

        # Time to first token: the page against a plain HTTP client, the same request, alternating.
        headers = server.headers
        page_ms, http_ms = [], []
        context, page = signed_in_context()
        def by_client(prompt: str) -> float:
            start = time.perf_counter()  # the conversation is made inside the timing, as the page makes it
            made = httpx.post(f"{server.url}/v1/conversations", json={"model": settings.chat_model},
                              headers=headers).json()
            body = {"content": prompt, "temperature": 0, "max_tokens": MAX_TOKENS, "stream": True}
            first = None
            with httpx.stream("POST", f"{server.url}/v1/conversations/{made['id']}/reply", json=body,
                              headers=headers, timeout=120) as r:
                for line in r.iter_lines():
                    if first is None and line.startswith("data: {") and '"delta"' in line:
                        first = (time.perf_counter() - start) * 1000
            assert first is not None
            return first

        def by_page(prompt: str) -> float:
            page.goto(f"{server.url}/#/chat")
            page.wait_for_selector("textarea[name=message]")
            page.fill("textarea[name=message]", prompt)
            start = time.perf_counter()
            page.keyboard.press("Enter")
            page.locator(".message.assistant .body :is(p, li)").first.wait_for(timeout=120_000)
            took = (time.perf_counter() - start) * 1000
            page.wait_for_selector(".messages[aria-busy=false]", timeout=120_000)
            return took

        for i in range(args.rounds):
            prompt = PROMPTS[i % len(PROMPTS)]
            # Who goes first alternates: the second of two equal prompts may find them in llama.cpp's cache.
            if i % 2 == 0:
                http_ms.append(by_client(prompt))
                page_ms.append(by_page(prompt))
            else:
                page_ms.append(by_page(prompt))
                http_ms.append(by_client(prompt))
        context.close()
        browser.close()
        out["time_to_first_token_ms"] = {
            "page": _summary(page_ms), "http_client": _summary(http_ms),
            "page_over_client_p50": round(percentile(page_ms, 50) / percentile(http_ms, 50), 2),
            "note": "both include making the conversation; the page's also includes drawing the first words"}
    runtime.close()
    write_results("web", out)


if __name__ == "__main__":
    main()
