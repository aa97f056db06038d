"""import_unleash on the command line: an Unleash export in, every client's bucket kept."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate
from rollout.models import Environment
from rollout.snapshots.compile import compile_environment

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_unleash__export_with_custom_strategy__imported_and_reported(tmp_path: Path) -> None:
    export = {
        "features": [
            {
                "name": "checkout",
                "enabled": True,
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {
                            "rollout": "30",
                            "stickiness": "default",
                            "groupId": "checkout",
                        },
                    },
                ],
            },
            {
                "name": "legacy",
                "enabled": True,
                "strategies": [
                    {"name": "myCustomStrategy", "parameters": {}},
                ],
            },
        ]
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))

    out = _run("import_unleash", str(path), "--environment", "staging")

    assert "Created environment staging." in out
    assert "Imported 2 flag(s) (2 new) and 0 segment(s) into staging." in out
    assert "legacy.strategies[0]: custom strategy 'myCustomStrategy' is not supported" in out
    snapshot = snapshot_from_document(compile_environment(Environment.objects.get(key="staging")))
    in_rollout = sum(
        evaluate(snapshot, "checkout", {"targetingKey": f"u{i}"}).enabled for i in range(2000)
    )
    assert 500 < in_rollout < 700  # 30 % of 2000, bucketed as Unleash does
    assert evaluate(snapshot, "legacy", {"targetingKey": "u"}).enabled is False


def test_import_unleash__not_an_export__clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[]")

    with pytest.raises(CommandError, match="not an Unleash client-features export"):
        _run("import_unleash", str(path), "--environment", "staging")
