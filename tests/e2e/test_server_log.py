"""The live server's log, as an operator reads it: no raw client id and no secret, even on the
error paths a client can reach (erasure refused, bad probe, unknown route, wrong key)."""

from __future__ import annotations

import requests

from tests.support.browser import WebServer


def test_client_api_errors__log_names_no_client_and_no_key(web: WebServer) -> None:
    wrong_key = "ef_live_not-a-key-of-this-server-1234567890"
    web.secrets.append(wrong_key)
    headers = {"Authorization": f"Bearer {web.client_key}"}

    answers = [
        requests.delete(f"{web.url}/api/v1/probes/e2e-erase-me", headers=headers, timeout=10),
        requests.delete(
            f"{web.url}/api/v1/probes/e2e-erase-me",
            headers={"Authorization": f"Bearer {wrong_key}"},
            timeout=10,
        ),
        requests.post(
            f"{web.url}/api/v1/probes",
            json={"clientId": "e2e-bad-probe", "device": {"memoryGb": "lots"}},
            headers=headers,
            timeout=10,
        ),
        requests.get(
            f"{web.url}/api/v1/nothing-here/e2e-no-such-route", headers=headers, timeout=10
        ),
        requests.post(
            f"{web.url}/ofrep/v1/evaluate/flags/smart-compose",
            json={"context": {"targetingKey": "e2e-ofrep-reader"}},
            headers={"Authorization": f"Bearer {wrong_key}"},
            timeout=10,
        ),
    ]

    assert [a.status_code for a in answers] == [403, 401, 400, 404, 401]
    assert web.log_leaks() == []
