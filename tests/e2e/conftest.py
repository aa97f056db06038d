"""Browser tests: Debian's headless Chromium driving pages of a live server.

One browser and one server for the package (fresh PostgreSQL database, migrate, load_demo, a
client key, granian as in production): starting them is the slow part, and no test here depends
on another's data, since every test uses client ids of its own. Package scope, not session: both
stop once the browser tests are done instead of idling through the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from tests.support.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    STAFF_PASSWORD,
    ConsoleLog,
    WebServer,
)
from tests.support.databases import fresh_database
from tests.support.processes import (
    free_port,
    manage,
    production_env,
    running,
    stream_server_argv,
    wait_for_http,
    web_server_argv,
)


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
        port, stream_port = free_port(), free_port()
        env["EDGEFLAGS_PORT"] = str(port)  # the demo's model artifacts are served from it
        manage(env, "migrate", "--no-input")
        manage(env, "load_demo")
        key = manage(env, "create_api_key", "--environment", "production", "--scope", "client")
        stream_url = f"http://127.0.0.1:{stream_port}"
        env["EDGEFLAGS_STREAM_URL"] = stream_url  # what the web server advertises
        with (
            running("stream", stream_server_argv(stream_port), env, tmp) as stream,
            running("web", web_server_argv(port), env, tmp) as server,
        ):
            wait_for_http(f"{stream_url}/healthz", stream)
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
            secrets = [key.strip(), STAFF_PASSWORD, env.get("SECRET_KEY", "")]
            web = WebServer(
                f"http://127.0.0.1:{port}",
                key.strip(),
                env,
                database_url,
                server.log_path,
                secrets,
                stream_url,
            )
            yield web
        # After every browser test: the whole run's server log names no client and no secret.
        leaks = web.log_leaks()
        assert not leaks, "the web server logged secrets or raw client ids:\n" + "\n".join(leaks)


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
