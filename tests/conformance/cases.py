"""The Unleash client-specification cases: the npm package @unleash/client-specification.

The version is pinned in package.json and package-lock.json; `make test` installs it into
node_modules/ (npm ci). EDGEFLAGS_CONFORMANCE_DIR overrides where the cases are read from:
the package's `specifications` folder (the one holding index.json) or the package folder.
A missing folder is an error, never a skipped test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / "node_modules" / "@unleash" / "client-specification" / "specifications"
EXPECTED_CASES = 279


def conformance_dir() -> Path:
    """The folder of the specification files (EDGEFLAGS_CONFORMANCE_DIR, else node_modules/…)."""
    folder = Path(os.environ.get("EDGEFLAGS_CONFORMANCE_DIR", str(DEFAULT_DIR))).resolve()
    inner = folder / "specifications"
    return inner if inner.is_dir() else folder


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
    """Every specification file in index order: (name, parsed JSON).

    Raises FileNotFoundError, saying how to install the cases, when the folder is missing.
    """
    folder = folder or conformance_dir()
    index = folder / "index.json"
    if not index.is_file():
        raise FileNotFoundError(
            f"{index}: the Unleash client specification is missing; `make test` installs it "
            "(npm ci, from package-lock.json), or set EDGEFLAGS_CONFORMANCE_DIR"
        )
    names = json.loads(index.read_text())
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
