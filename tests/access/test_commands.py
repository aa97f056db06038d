"""create_api_key on the command line: the key printed once, only its hash stored."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rollout.models import ApiKey
from rollout.snapshots.store import hash_api_key

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_api_key__known_environment__key_printed_once_hash_stored() -> None:
    call_command("load_demo", stdout=StringIO())

    raw = _run("create_api_key", "--environment", "production", "--scope", "server").strip()

    stored = ApiKey.objects.get(key_hash=hash_api_key(raw))
    assert raw.startswith("efs_")
    assert stored.scope == "server"
    assert stored.prefix == raw[:12]
    assert not ApiKey.objects.filter(key_hash=raw).exists()


def test_create_api_key__unknown_environment__error_names_option() -> None:
    with pytest.raises(CommandError, match="--environment: no environment 'nope'"):
        _run("create_api_key", "--environment", "nope", "--scope", "client")
