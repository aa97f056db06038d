"""Test settings: pick the real services when they are there, then load config.settings.

Order (issue: foundation): DATABASE_URL / REDIS_URL when set; otherwise PostgreSQL and Redis
on their default local ports when reachable; otherwise SQLite and local memory. With
REQUIRE_SERVICES=1 a missing PostgreSQL or Redis is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import socket
import tempfile

from django.core.exceptions import ImproperlyConfigured

LOCAL_POSTGRES = ("127.0.0.1", 5432, "postgres://postgres@127.0.0.1:5432/edgeflags")
LOCAL_REDIS = ("127.0.0.1", 6379, "redis://127.0.0.1:6379/15")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _choose(variable: str, local: tuple[str, int, str], required: bool) -> None:
    if os.environ.get(variable):
        return
    host, port, url = local
    if _reachable(host, port):
        os.environ[variable] = url
    elif required:
        raise ImproperlyConfigured(
            f"REQUIRE_SERVICES=1 but {variable} is unset and nothing listens on {host}:{port}"
        )


_required = os.environ.get("REQUIRE_SERVICES", "") in ("1", "true", "yes")
_choose("DATABASE_URL", LOCAL_POSTGRES, _required)
_choose("REDIS_URL", LOCAL_REDIS, _required)
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# Servers started by tests serve the demo page, as `make run` does.
os.environ.setdefault("EDGEFLAGS_DEMO", "true")
os.environ.setdefault("EDGEFLAGS_VAR_DIR", tempfile.mkdtemp(prefix="edgeflags-test-var-"))
# Subprocesses started by tests (servers, workers) inherit the choice made here.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

from config.settings import *  # noqa: E402, F403

# A smaller demo population keeps tests that load the demo quick.
EDGEFLAGS_DEMO_CLIENTS = 3000
# No background exposure writer in the test process: its at-exit flush would run after
# pytest-django restored the database name (tests that need it flush explicitly).
EDGEFLAGS_EXPOSURE_FLUSH_S = 0

# Fast password hashing: tests create many users; production keeps the default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# collectstatic does not run in tests; WhiteNoise serves from the finders instead.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# The test client's login() calls authenticate() without a request, which django-axes
# refuses: in-process tests run without it, except the lockout tests, which turn it on
# (tests/api/test_hardening.py); servers started by tests run with it, as production does.
AXES_ENABLED = False
