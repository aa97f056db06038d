"""The console reads through selectors: no console module builds an ORM query itself, so
every page's queries live where the query-count tests and the API find them."""

from __future__ import annotations

import ast
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def _manager_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in {"objects", "_default_manager"}
    ]


def test_console__no_module_queries_the_orm_itself() -> None:
    modules = sorted(CONSOLE.rglob("*.py"))
    assert len(modules) > 5  # the console's views, not an empty folder

    found = [use for module in modules for use in _manager_uses(module)]

    assert found == [], f"queries outside the selectors: {found}"
