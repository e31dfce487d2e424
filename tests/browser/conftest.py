"""A real browser for the back-office: Debian's headless Chromium driven by Playwright for Python.

Playwright's own browser download is not used (`playwright install` needs a host the CI machine
cannot reach); `.ci/tests` installs Debian's `chromium`, and Playwright drives it by path. The
browser may only talk to 127.0.0.1 and localhost: every other request is aborted. Screenshots go
to `test-output/browser/` (git-ignored); the path is printed at the end of the run.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_taken: list[Path] = []


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is
    started, and Django refuses database calls there unless DJANGO_ALLOW_ASYNC_UNSAFE is set
    (what Playwright's and pytest-django's docs advise), so that is set for these tests only."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (see .ci/tests)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Screen:
    """One browser tab, with what went wrong on the service's pages: Content-Security-Policy
    complaints, and static files that failed to load."""

    page: Any
    origin: str
    violations: list[str] = field(default_factory=list)
    broken_assets: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.violations == []
        assert self.broken_assets == []

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        _taken.append(path)
        return path


@pytest.fixture(scope="session")
def _fresh_screenshots() -> None:
    """This run's screenshots only."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)


@pytest.fixture
def screen(browser: Any, live_server: Any, _fresh_screenshots: None) -> Iterator[Screen]:
    context = browser.new_context(viewport={"width": 1600, "height": 900})

    def local_only(route: Any) -> None:
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", local_only)
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Screen(page=page, origin=live_server.url)

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text and page.url.startswith(tab.origin):
            tab.violations.append(f"{page.url}: {message.text}")

    def on_response(response: Any) -> None:
        if response.url.startswith(f"{tab.origin}/static/") and response.status >= 400:
            tab.broken_assets.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        # ERR_ABORTED: the page navigated away while it loaded (a click before a deferred script
        # finished), not a file that cannot load.
        if request.url.startswith(tab.origin) and "ERR_ABORTED" not in (request.failure or ""):
            tab.broken_assets.append(f"{request.failure} {request.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        yield tab
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _taken:
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS} ({len(_taken)} files)")
