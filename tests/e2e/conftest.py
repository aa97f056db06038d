"""Browser tests: real headless Chromium (Debian's) driving pages of a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.processes import (
    REPO,
    free_port,
    manage,
    production_env,
    running,
    wait_for_http,
    web_server_argv,
)

# Playwright's sync API keeps an event loop running in the test thread, which Django takes
# for an async context; this process only drives a browser and reads the test database,
# so the guard is lifted here (as Django's docs advise for Playwright), never in a server.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "e2e"
# The flags a machine with no display and a closed network needs (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class WebServer:
    url: str
    client_key: str
    env: dict[str, str]
    database_url: str


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium; a machine without it fails the test (CI installs it)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The web server as in production, on a fresh PostgreSQL database with the demo data."""
    from tests.support.databases import fresh_database

    tmp = tmp_path_factory.mktemp("live")
    with fresh_database() as database_url:
        env = production_env(tmp, database_url, settings.REDIS_URL)
        env["EDGEFLAGS_DEMO_CLIENTS"] = "3000"
        manage(env, "migrate", "--no-input")
        manage(env, "load_demo")
        key = manage(env, "create_api_key", "--environment", "production", "--scope", "client")
        port = free_port()
        with running("web", web_server_argv(port), env, tmp) as server:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
            yield WebServer(f"http://127.0.0.1:{port}", key.strip(), env, database_url)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; console errors fail the test; a screenshot is kept."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"console errors: {errors}"
