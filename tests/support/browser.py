"""Builders for the browser tests: the live server's handle, the page's console log, the
admin login, and where screenshots go."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.support.processes import REPO, manage

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
    stream_url: str = ""  # the change stream beside it (the Procfile's `stream`)

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


STAFF_PASSWORD = "pw-for-tests-only"


def admin_login(page: Page, web: WebServer, username: str, next_path: str) -> None:
    """Sign in through the admin's login form (password STAFF_PASSWORD), landing on next_path."""
    page.goto(f"{web.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{web.url}{next_path}")
