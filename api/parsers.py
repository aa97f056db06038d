"""The management API's JSON parser: refuses, naming the field, what could not be published.

DRF's JSONParser takes a lone surrogate (``"\\ud800"``), ``"\\u0000"`` or 5,000 levels of
nesting (the last as a RecursionError, a 500). Stored, the first two fail every later
publish of the environment on orjson or PostgreSQL; so they are refused here, at the door,
with a 400 that names the offending field.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from ops.json_input import MAX_JSON_DEPTH, JsonInputError, check_json


class StrictJSONParser(JSONParser):
    """JSONParser plus ops.json_input's checks (surrogates, control characters, depth)."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels"
            ) from None
        try:
            check_json(data, field="")
        except JsonInputError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return data
