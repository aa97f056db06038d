"""Model fields and validators that keep unpublishable strings and JSON out of the rows.

A value that PostgreSQL or orjson cannot take (a lone surrogate, NUL, 5,000 levels of
nesting) must be refused by the form, serializer or service that receives it, naming the
field: stored, it would fail every later publish of its environment. Validators on the model
fields reach admin forms, ModelSerializers and `full_clean` alike.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.deconstruct import deconstructible

from ops.json_input import JsonInputError, check_json, check_text


@deconstructible
class JsonInputValidator:
    """Refuse a JSON value with lone surrogates, control characters, deep nesting or NaN."""

    code = "invalid_json_input"

    def __call__(self, value: Any) -> None:
        try:
            check_json(value, field="")
        except JsonInputError as exc:
            raise ValidationError(
                exc.message if exc.field == "value" else str(exc), self.code
            ) from None
        try:
            orjson.dumps(value)  # what publishing does; refuses integers beyond 64 bits too
        except orjson.JSONEncodeError as exc:
            raise ValidationError(f"cannot be published: {exc}", self.code) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonInputValidator)

    def __hash__(self) -> int:
        return hash(self.code)


@deconstructible
class TextInputValidator:
    """Refuse text with a lone surrogate or a control character other than tab, LF and CR."""

    code = "invalid_text_input"

    def __call__(self, value: Any) -> None:
        if not isinstance(value, str):
            return
        try:
            check_text(value, field="value")
        except JsonInputError as exc:
            raise ValidationError(exc.message, self.code) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextInputValidator)

    def __hash__(self) -> int:
        return hash(self.code)


TEXT_INPUT = TextInputValidator()


def refused_json(*values: object) -> bool:
    """Whether the strict JSON check refuses any of `values`.

    clean() skips its deeper checks then: the field validators already name the field, and
    those checks would recurse through a 5,000-level value (RecursionError, a 500).
    """
    for value in values:
        try:
            check_json(value, field="value")
        except JsonInputError:
            return True
    return False


class StrictJSONFormField(forms.JSONField):
    """The admin's JSON field: too deep a document is a form error, not a RecursionError."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(
                "nested too deeply to be read", code="invalid", params={"value": ""}
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        try:
            text = json.dumps(value, ensure_ascii=False, cls=self.encoder)
        except RecursionError:
            return ""
        try:
            text.encode()
        except UnicodeEncodeError:
            # A refused value with a lone surrogate is shown escaped: the page must encode.
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return text


class StrictJSONField(models.JSONField):
    """A JSONField whose values are always storable on PostgreSQL and publishable."""

    default_validators = [JsonInputValidator()]

    def validate(self, value: Any, model_instance: Any) -> None:
        # Before Django's own check, which json.dumps the value (a RecursionError when deep).
        JsonInputValidator()(value)
        super().validate(value, model_instance)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": StrictJSONFormField, **kwargs})
