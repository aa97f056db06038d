"""The management API's JSON parser: refuses, naming the field, what could not be published.

DRF's JSONParser takes a lone surrogate (``"\\ud800"``), ``"\\u0000"`` and 5,000 levels of
nesting (the last as a RecursionError, a 500). Stored, the first two fail every later
publish of the environment on orjson or PostgreSQL; so they are refused here, at the door,
with a 400 that names the offending field.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from ops.json_input import MAX_JSON_DEPTH, JsonInputError, check_json


def _too_deep_at(text: str) -> str:
    """The path (``offValue[0][0]``) where the JSON `text` first nests past MAX_JSON_DEPTH.

    Only called when the parser gave up on the nesting, so the text is scanned without
    parsing it: strings are skipped, containers counted, object keys and array indexes kept.
    """
    path: list[str | int] = []
    last_string = ""
    i, n = 0, len(text)
    while i < n and len(path) <= MAX_JSON_DEPTH:
        char = text[i]
        if char == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            last_string = text[i + 1 : end]
            i = end
        elif char in "[{":
            path.append(0 if char == "[" else "")
        elif char in "]}" and path:
            path.pop()
        elif char == ":" and path:
            path[-1] = last_string[:40]
        elif char == "," and path and isinstance(path[-1], int):
            path[-1] += 1
        i += 1
    # The innermost entry is the container that went too deep, not a position in it.
    field = ""
    for part in path[:-1]:
        field = f"{field}[{part}]" if isinstance(part, int) else f"{field}.{part}".lstrip(".")
    return field or "body"


class StrictJSONParser(JSONParser):
    """JSONParser plus ops.json_input's checks (surrogates, control characters, depth)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise ValidationError(
                {_too_deep_at(text): [f"nested deeper than {MAX_JSON_DEPTH} levels"]}
            ) from None
        except ValueError as exc:  # bad JSON, or bytes that are not in the declared charset
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            check_json(data, field="")
        except JsonInputError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return data
