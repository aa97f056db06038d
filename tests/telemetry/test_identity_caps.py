"""New guardrail identities per hour are capped per source address and per API key."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from telemetry.buffer import buffered_count
from tests.support.telemetry import BUFFER_MODES, Events, served

pytestmark = pytest.mark.django_db


def _post(client: Client, key: str, environment: Any, targeting_key: str, address: str) -> Any:
    body = {
        "targetingKey": targeting_key,
        "events": served(environment, targeting_key, [Events()("exposure")]),
    }
    return client.post(
        "/api/v1/events",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        REMOTE_ADDR=address,
    ).json()


@pytest.mark.parametrize("buffer_mode", BUFFER_MODES, indirect=True)
def test_identity_cap__per_address__clients_over_it_accepted_not_counted(
    client, client_key, flags, buffer_mode, settings
) -> None:
    settings.EDGEFLAGS_IDENTITY_CAP_PER_ADDRESS = 3

    answers = [_post(client, client_key, flags, f"device-{n}", "203.0.113.7") for n in range(5)]
    again = _post(client, client_key, flags, "device-0", "203.0.113.7")  # admitted: still counts
    elsewhere = _post(client, client_key, flags, "device-9", "198.51.100.1")

    assert [a["accepted"] for a in answers] == [1, 1, 1, 0, 0]
    assert [a["uncounted"] for a in answers] == [0, 0, 0, 1, 1]
    assert answers[3]["uncountedReason"].startswith("identity cap")
    assert "uncountedReason" not in answers[0]
    assert (again["accepted"], elsewhere["accepted"]) == (1, 1)
    assert buffered_count() == 5


def test_identity_cap__per_key__applies_across_addresses(
    client, client_key, flags, settings
) -> None:
    settings.EDGEFLAGS_IDENTITY_CAP_PER_KEY = 2

    answers = [_post(client, client_key, flags, f"d-{n}", f"192.0.2.{n}") for n in range(4)]

    assert [a["accepted"] for a in answers] == [1, 1, 0, 0]
    assert buffered_count() == 2
