"""A real plait server on loopback with the real packaged models, and Debian's Chromium driven by
Playwright, for the web page's end-to-end tests. Screenshots go to tests/browser/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plait.runtime import Runtime
from plait.settings import resolve_settings
from tests.servers import RunningServer, models_sharing_home, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"


@dataclass
class Site:
    server: RunningServer
    runtime: Runtime
    home: Path

    @property
    def url(self) -> str:
        return self.server.url

    def signin_url(self) -> str:
        from plait.web.sessions import new_signin_token

        return f"{self.url}/signin?token={new_signin_token(self.runtime.store)}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_models_home: Path) -> Iterator[Site]:
    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key

    home = models_sharing_home(tmp_path_factory, shared_models_home, "web-home")
    settings = resolve_settings(environ={}, home=home).settings  # the defaults: smollm2 and minilm-q8
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime, workflows=True)
    key = ensure_local_key(KeyStore(runtime.store), home)
    with serve_in_thread(app, key) as running:
        yield Site(running, runtime, home)
    runtime.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: scripts/system-packages.sh installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A signed-in page; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(site.signin_url())
    tab.wait_for_selector("main h1")
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
