"""The Unleash client-specification cases, loaded from EDGEFLAGS_CONFORMANCE_DIR."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / ".." / "shared" / "conformance" / "unleash-client-specification"
EXPECTED_CASES = 279


def conformance_dir() -> Path:
    """Where the specification lives (EDGEFLAGS_CONFORMANCE_DIR, else ../shared/…)."""
    return Path(os.environ.get("EDGEFLAGS_CONFORMANCE_DIR", str(DEFAULT_DIR))).resolve()


@dataclass(frozen=True)
class Case:
    file: str
    description: str
    state: dict[str, Any]
    context: dict[str, Any]
    toggle: str
    expected_enabled: bool | None  # for isEnabled cases
    expected_variant: dict[str, Any] | None  # for getVariant cases

    @property
    def id(self) -> str:
        return f"{self.file}::{self.description}"


def load_files(folder: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every specification file in index order: (name, parsed JSON)."""
    folder = (folder or conformance_dir()) / "specifications"
    names = json.loads((folder / "index.json").read_text())
    return [(name, json.loads((folder / name).read_text())) for name in names]


def cases_of(name: str, spec: dict[str, Any]) -> list[Case]:
    """The isEnabled and getVariant cases of one file."""
    cases = [
        Case(
            name,
            t["description"],
            spec["state"],
            t["context"],
            t["toggleName"],
            t["expectedResult"],
            None,
        )
        for t in spec.get("tests", [])
    ]
    cases += [
        Case(
            name,
            t["description"],
            spec["state"],
            t["context"],
            t["toggleName"],
            None,
            t["expectedResult"],
        )
        for t in spec.get("variantTests", [])
    ]
    return cases


def load_cases(folder: Path | None = None) -> list[Case]:
    """All cases; an empty list when the folder is missing (a test then fails on the count)."""
    try:
        files = load_files(folder)
    except FileNotFoundError:
        return []
    return [case for name, spec in files for case in cases_of(name, spec)]
