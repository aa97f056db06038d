"""Browser tests: Debian's headless Chromium driving pages of a live server.

One browser and one server for the package (fresh PostgreSQL database, migrate, load_demo, a
client key, granian as in production): starting them is the slow part, and no test here depends
on another's data, since every test uses client ids of its own. Package scope, not session: both
stop once the browser tests are done instead of idling through the rest of the suite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from tests.support.databases import fresh_database
from tests.support.processes import (
    REPO,
    free_port,
    manage,
    production_env,
    running,
    wait_for_http,
    web_server_argv,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "e2e"
# What a machine with no display, no GPU and a closed network needs; nothing is downloaded.
CHROMIUM_ARGS = [
    "--headless=new",
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
    log_path: Path
    # Credentials tests create (tokens, keys): none may appear in the server's log.
    secrets: list[str] = field(default_factory=list)

    def log_leaks(self) -> list[str]:
        """Lines of the server's log so far that hold a secret or a raw client id."""
        return log_leaks(self.log_path.read_text(errors="replace"), self.secrets)

    def profile(self, client_id: str) -> dict[str, Any] | None:
        """The stored ClientProfile row of `client_id` with its segment's current key
        (`segment_key`), read by the server's own code.

        Run through `manage.py shell` in the server's environment so the client hash is
        computed with the server's secret, exactly as the endpoint stored it.
        """
        code = (
            "import json\n"
            "from capability_probe.models import ClientProfile\n"
            "from capability_probe.services import client_hash\n"
            "from segments.selectors import profiles_with_segment_keys\n"
            f"rows = ClientProfile.objects.filter(client_hash=client_hash({client_id!r}))\n"
            "row = profiles_with_segment_keys(rows).values().first()\n"
            "print(json.dumps(row, default=str))\n"
        )
        return json.loads(manage(self.env, "shell", "-c", code).strip().splitlines()[-1])


# The raw client ids tests send (all "e2e-…") and those the browser script generates (UUID 4).
RAW_CLIENT_ID = re.compile(
    r"\be2e-[\w-]+|\b[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b"
)


def log_leaks(log: str, secrets: list[str]) -> list[str]:
    """The lines of `log` holding one of `secrets` or something shaped like a raw client id."""
    return [
        line
        for line in log.splitlines()
        if RAW_CLIENT_ID.search(line) or any(secret in line for secret in secrets if secret)
    ]


@dataclass
class ConsoleLog:
    """What the page said on its console, and the uncaught errors it threw."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect console errors matching `pattern` (e.g. Chromium's line for a failed 503)."""
        self.allowed.append(re.compile(pattern))

    def errors(self) -> list[str]:
        return [
            text
            for kind, text in self.messages
            if kind == "error" and not any(p.search(text) for p in self.allowed)
        ] + self.page_errors

    def ours(self, kind: str) -> list[str]:
        """Messages of `kind` the probe script logged itself (they start with "edgeflags:")."""
        return [text for k, text in self.messages if k == kind and text.startswith("edgeflags:")]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium; when missing the tests fail: a skipped suite proves nothing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; "
            ".ci/run does it). Playwright's own browser download is not used."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The web server as in production, on a fresh PostgreSQL database with the demo data."""
    tmp = tmp_path_factory.mktemp("live")
    with fresh_database() as database_url:
        env = production_env(tmp, database_url, settings.REDIS_URL)
        env["EDGEFLAGS_DEMO_CLIENTS"] = "3000"  # enough for a first segmentation, quickly
        manage(env, "migrate", "--no-input")
        manage(env, "load_demo")
        key = manage(env, "create_api_key", "--environment", "production", "--scope", "client")
        port = free_port()
        with running("web", web_server_argv(port), env, tmp) as server:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
            secrets = [key.strip(), STAFF_PASSWORD, env.get("SECRET_KEY", "")]
            web = WebServer(
                f"http://127.0.0.1:{port}", key.strip(), env, database_url, server.log_path, secrets
            )
            yield web
        # After every browser test: the whole run's server log names no client and no secret.
        leaks = web.log_leaks()
        assert not leaks, "the web server logged secrets or raw client ids:\n" + "\n".join(leaks)


STAFF_PASSWORD = "pw-for-tests-only"


def admin_login(page: Page, web: WebServer, username: str, next_path: str) -> None:
    """Sign in through the admin's login form (password STAFF_PASSWORD), landing on next_path."""
    page.goto(f"{web.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{web.url}{next_path}")


@pytest.fixture
def console_log() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(
    browser: Browser, console_log: ConsoleLog, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh context and page; a screenshot is kept; unexpected console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        console_log.messages.append((message.type, message.text))

    def on_page_error(error: Error) -> None:
        console_log.page_errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert console_log.errors() == [], f"console errors: {console_log.errors()}"
