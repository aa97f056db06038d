"""Against live servers: the OpenFeature SDK over OFREP, and a change seen by a second process.

Data goes in as a user would put it: `import_unleash` and `create_api_key` on the command
line, a staff token for the management API.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings
from openfeature import api as openfeature_api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from tests.support.databases import fresh_database
from tests.support.processes import manage, production_env, seed, web_servers

pytestmark = pytest.mark.services

EXPORT = {
    "version": 2,
    "segments": [
        {
            "id": 1,
            "name": "pro-users",
            "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
        }
    ],
    "features": [
        {
            "name": "smart-reply",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {
                        "rollout": "100",
                        "stickiness": "default",
                        "groupId": "smart-reply",
                    },
                    "constraints": [],
                    "segments": [1],
                }
            ],
        },
        {
            "name": "greeting",
            "enabled": True,
            "strategies": [],
            "variants": [
                {"name": "formal", "weight": 1000, "payload": {"type": "string", "value": "Dear"}}
            ],
        },
        {
            "name": "temperature",
            "enabled": True,
            "strategies": [],
            "variants": [
                {"name": "warm", "weight": 1000, "payload": {"type": "number", "value": "0.7"}}
            ],
        },
        {
            "name": "compose/config",
            "enabled": True,
            "strategies": [],
            "variants": [
                {
                    "name": "v2",
                    "weight": 1000,
                    "payload": {"type": "json", "value": '{"model": "tiny", "maxTokens": 64}'},
                }
            ],
        },
        {
            "name": "lead-scoring-model",
            "enabled": True,
            "strategies": [],
            "variants": [
                {"name": "gbm", "weight": 500, "payload": {"type": "string", "value": "gbm-v3"}},
                {
                    "name": "tiny",
                    "weight": 500,
                    "payload": {"type": "string", "value": "tiny-transformer"},
                },
            ],
        },
    ],
}
NODE_SERVER_SDK = Path(__file__).parents[1] / "support" / "js" / "openfeature_server.mjs"


@dataclass
class Stack:
    urls: list[str]
    client_key: str
    staff_token: str


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two web servers on one PostgreSQL database and one Redis, loaded with EXPORT (one
    stack for the module: the tests read it, and the one that changes a flag runs last)."""
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    with fresh_database() as database:
        yield from _stack(tmp_path_factory.mktemp("live"), database)


def _stack(tmp_path: Path, database: str) -> Iterator[Stack]:
    env = production_env(tmp_path, database, settings.REDIS_URL)
    manage(env, "migrate", "--no-input")
    export = tmp_path / "unleash.json"
    export.write_text(json.dumps(EXPORT))
    seeded = seed(env, export=export)
    assert "Imported 5 flag(s) (5 new) and 1 segment(s) into production." in seeded.output
    (client_key,), token = seeded.keys, seeded.token
    with web_servers(("web-a", "web-b"), env, tmp_path) as urls:
        yield Stack(urls=urls, client_key=client_key.strip(), staff_token=token)


def test_openfeature_sdk__ofrep_provider__every_kind(live_stack: Stack) -> None:
    key = live_stack.client_key
    openfeature_api.set_provider(
        OFREPProvider(
            live_stack.urls[0], headers_factory=lambda: {"Authorization": f"Bearer {key}"}
        )
    )
    client = openfeature_api.get_client()
    pro = EvaluationContext(targeting_key="user-1", attributes={"plan": "pro"})
    free = EvaluationContext(targeting_key="user-2", attributes={"plan": "free"})

    assert client.get_boolean_value("smart-reply", False, pro) is True
    assert client.get_boolean_value("smart-reply", True, free) is False
    assert client.get_string_value("greeting", "Hi", pro) == "Dear"
    assert client.get_float_value("temperature", 0.0, pro) == 0.7
    assert client.get_object_value("compose/config", {}, pro) == {"model": "tiny", "maxTokens": 64}
    details = client.get_boolean_details("smart-reply", False, pro)
    assert details.reason == "TARGETING_MATCH"
    assert details.variant == "disabled"  # Unleash: a flag without variants
    assert details.flag_metadata["enabled"] is True
    missing = client.get_boolean_details("does-not-exist", False, pro)
    assert missing.value is False
    assert missing.error_code == "FLAG_NOT_FOUND"
    split = client.get_string_details("lead-scoring-model", "none", EvaluationContext())
    assert split.value == "none"  # the application's default, not a random variant
    assert split.error_code == "TARGETING_KEY_MISSING"
    assert client.get_string_value("lead-scoring-model", "none", pro) in (
        "gbm-v3",
        "tiny-transformer",
    )


def test_openfeature_node_server_sdk__ofrep_provider__types_and_error_codes(
    live_stack: Stack,
) -> None:
    """@openfeature/server-sdk with @openfeature/ofrep-provider (package.json), in Node."""
    out = subprocess.run(
        ["node", str(NODE_SERVER_SDK), live_stack.urls[0], live_stack.client_key],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    got = json.loads(out.stdout)

    assert got["smartReply"]["value"] is True
    assert got["smartReply"]["reason"] == "TARGETING_MATCH"
    assert got["greeting"]["value"] == "Dear"
    assert got["temperature"]["value"] == 0.7
    assert got["compose"]["value"] == {"model": "tiny", "maxTokens": 64}
    assert got["splitWithKey"]["value"] in ("gbm-v3", "tiny-transformer")
    assert got["splitWithoutKey"]["value"] == "none"
    assert got["splitWithoutKey"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert got["badContext"]["errorCode"] == "INVALID_CONTEXT"
    assert "targetingKey" in got["badContext"]["errorMessage"]
    assert got["missing"]["errorCode"] == "FLAG_NOT_FOUND"
    assert got["wrongType"]["errorCode"] == "TYPE_MISMATCH"
    assert got["wrongType"]["value"] is False


def _chunks(body: bytes) -> Iterator[bytes]:
    yield body  # a generator body: requests sends it with Transfer-Encoding: chunked


def test_chunked_bodies__client_and_management_api__411_not_dropped(live_stack: Stack) -> None:
    web_a = live_stack.urls[0]
    context = json.dumps({"context": {"targetingKey": "u", "plan": "pro"}}).encode()
    evaluate = requests.post(
        f"{web_a}/api/v1/evaluate",
        data=_chunks(context),
        headers={"Authorization": f"Bearer {live_stack.client_key}"},
        timeout=5,
    )
    patch = requests.patch(
        f"{web_a}/api/v1/flags/smart-reply/environments/production",
        data=_chunks(b'{"enabled": false}'),
        headers={
            "Authorization": f"Token {live_stack.staff_token}",
            "Content-Type": "application/json",
        },
        timeout=5,
    )

    assert evaluate.request.headers["Transfer-Encoding"] == "chunked"
    assert (evaluate.status_code, evaluate.json()["errorCode"]) == (411, "LENGTH_REQUIRED")
    assert patch.status_code == 411, patch.text
    assert "Content-Length" in patch.json()["detail"]
    flags = requests.get(
        f"{web_a}/api/v1/flags", headers={"Authorization": f"Token {live_stack.staff_token}"}
    ).json()
    assert next(f for f in flags if f["key"] == "smart-reply")["states"][0]["enabled"] is True


def test_flag_change_through_one_process__served_by_the_other_within_1s(
    live_stack: Stack,
) -> None:
    web_a, web_b = live_stack.urls
    evaluate = {"context": {"targetingKey": "u", "plan": "pro"}, "flags": ["smart-reply"]}
    headers = {"Authorization": f"Bearer {live_stack.client_key}"}

    def served_on_b() -> bool:
        body = requests.post(f"{web_b}/api/v1/evaluate", json=evaluate, headers=headers, timeout=5)
        return bool(body.json()["flags"]["smart-reply"]["value"])

    assert served_on_b() is True
    changed = requests.patch(
        f"{web_a}/api/v1/flags/smart-reply/environments/production",
        json={"enabled": False},
        headers={"Authorization": f"Token {live_stack.staff_token}"},
        timeout=5,
    )
    changed_at = time.monotonic()
    assert changed.status_code == 200, changed.text
    while served_on_b():
        assert time.monotonic() - changed_at < 1.0, "web-b still serves the old flag after 1 s"
        time.sleep(0.02)
    assert time.monotonic() - changed_at < 1.0
    # The OFREP SDK provider (dynamic context: a request per evaluation, no stream to follow)
    # has it on its next evaluation.
    key = live_stack.client_key
    openfeature_api.set_provider(
        OFREPProvider(web_b, headers_factory=lambda: {"Authorization": f"Bearer {key}"})
    )
    pro = EvaluationContext(targeting_key="u", attributes={"plan": "pro"})
    assert openfeature_api.get_client().get_boolean_value("smart-reply", True, pro) is False
    assert time.monotonic() - changed_at < 1.5
