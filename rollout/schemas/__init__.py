"""JSON Schemas kept in the repository, and their validators."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((HERE / name).read_text()))


def ui_state_problems(ui_state: Any) -> list[str]:
    """Problems with a rung's UI state against ui_state.schema.json, each naming its place."""
    problems = []
    for error in _validator("ui_state.schema.json").iter_errors(ui_state):
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append(f"{where + ': ' if where else ''}{error.message}")
    return problems
