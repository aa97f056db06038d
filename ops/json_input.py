"""Strict JSON input: what every stored or published JSON value must satisfy.

A value that PostgreSQL or orjson cannot take must be refused where it comes in, with a
message naming the field, not when a later publish or fold trips over it:

- a lone surrogate (``"\\ud800"``) is valid Python text that orjson refuses to encode, so one
  stored in a flag froze every later publish of its environment;
- NUL is refused by PostgreSQL's text and jsonb types (SQLite takes it), other C0 control
  characters are never meaningful in flag, plan or telemetry data (tab, LF and CR are kept:
  UI copy may have line breaks);
- deep nesting makes recursive encoders and validators raise RecursionError;
- NaN and infinities are not JSON at all.

Pure Python: every app (and the pure engine's callers) may use it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ops.errors import DomainError

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted anywhere (the depth of a scalar at top is 0)."""

# C0 controls except tab, LF and CR; DEL; lone (and any) surrogate code points, which only a
# lone surrogate can produce in a Python str.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class JsonInputError(DomainError):
    """A JSON value refused; `field` is the path of the offending part (``stages[2].name``)."""


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored or published, or None when it can."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    char = found.group()
    position = found.start()
    if "\ud800" <= char <= "\udfff":
        return f"contains a lone surrogate (U+{ord(char):04X}) at character {position}"
    return f"contains the control character U+{ord(char):04X} at character {position}"


def check_text(text: str, *, field: str) -> None:
    """Refuse a string with a lone surrogate or a control character other than tab, LF, CR."""
    problem = text_problem(text)
    if problem is not None:
        raise JsonInputError(field, problem)


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    # The path goes into an error message, which must itself be publishable JSON.
    safe = _FORBIDDEN.sub("?", part[:40])
    return f"{path}.{safe}" if path else safe


def check_json(value: Any, *, field: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a JSON value that could not be stored on PostgreSQL or published with orjson.

    Walks the value without recursion (so a 5,000-level document is refused, not a
    RecursionError); keys and strings are checked with `check_text`, numbers must be finite.
    """
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, field=path or "value")
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonInputError(path or "value", "must be a finite number")
        elif isinstance(item, dict):
            if depth >= max_depth:
                raise JsonInputError(path or "value", f"nested deeper than {max_depth} levels")
            for key, child in item.items():
                if not isinstance(key, str):
                    raise JsonInputError(path or "value", "object keys must be strings")
                key_path = _join(path, key)
                check_text(key, field=key_path)
                stack.append((child, key_path, depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth >= max_depth:
                raise JsonInputError(path or "value", f"nested deeper than {max_depth} levels")
            stack.extend((child, _join(path, i), depth + 1) for i, child in enumerate(item))
        else:
            raise JsonInputError(path or "value", f"{type(item).__name__} is not a JSON value")
