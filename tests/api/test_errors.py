"""Domain refusals become 4xx naming the field in one place; a plain ValueError is a bug."""

from __future__ import annotations

import pytest

from api.errors import exception_handler
from ops.errors import Conflict, DomainError, NotFound
from rollout.rollouts import RolloutConflict, RolloutError, RolloutNotFound
from segments.services import SegmentError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DomainError("ttl", "too long"), 400),
        (RolloutError("reason", "required"), 400),
        (SegmentError("key", "taken"), 400),
        (NotFound("flag", "no such flag"), 404),
        (RolloutNotFound("segment", "not part of the rollout"), 404),
        (Conflict("action", "not now"), 409),
        (RolloutConflict("action", "already rolled back"), 409),
    ],
)
def test_domain_error__answered_with_its_status_naming_the_field(error, status) -> None:
    response = exception_handler(error, {})

    assert response is not None
    assert response.status_code == status
    assert response.data == {error.field: [error.message]}


def test_plain_value_error__not_turned_into_a_400() -> None:
    # DRF's own handler knows nothing of it: the request fails as the bug it is (a 500).
    assert exception_handler(ValueError("ttl: looks like a field"), {}) is None


def test_domain_errors__carry_no_http_status() -> None:
    for error in (RolloutNotFound("flag", "x"), RolloutConflict("action", "y")):
        assert not hasattr(error, "status")
        assert not isinstance(error, ValueError)
