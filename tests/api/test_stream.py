"""The change stream (api/stream) as the Procfile runs it, beside a web server, on PostgreSQL
and Redis: events within a second of a change, Last-Event-ID resume, heartbeats, keys and
origins, the connection caps, its metrics, and the refetch it triggers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from django.conf import settings

from tests.support.databases import fresh_database
from tests.support.metrics import total
from tests.support.processes import (
    free_port,
    manage,
    production_env,
    running,
    seed,
    stream_server_argv,
    wait_for_http,
    web_server_argv,
)
from tests.support.sse import EventStream

pytestmark = pytest.mark.services

EXPORT = {
    "version": 2,
    "features": [
        {
            "name": "smart-reply",
            "enabled": True,
            "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
        },
        {"name": "inbox-digest", "enabled": True, "strategies": []},
    ],
}
MAX_CONNECTIONS = 6
MAX_PER_ADDRESS = 3
METRICS_TOKEN = "metrics-token-for-tests"


@dataclass
class Stack:
    web: str
    stream: str
    client_key: str
    server_key: str
    staff_token: str
    env: dict[str, str]
    stream_b: str  # a second stream process, as on another machine (its own subscription)

    def flags_url(self, key: str | None = None) -> str:
        return f"{self.stream}/stream/v1/flags?key={key or self.client_key}"

    def set_enabled(self, flag: str, enabled: bool) -> float:
        """Change `flag` through the management API; when the change was answered."""
        response = requests.patch(
            f"{self.web}/api/v1/flags/{flag}/environments/production",
            json={"enabled": enabled},
            headers={"Authorization": f"Token {self.staff_token}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return time.monotonic()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not settings.REDIS_URL:
        pytest.fail("this test needs Redis (set REDIS_URL or run one on 127.0.0.1:6379)")
    tmp = tmp_path_factory.mktemp("stream")
    with fresh_database() as database:
        env = production_env(tmp, database, settings.REDIS_URL)
        stream_port, stream_b_port = free_port(), free_port()
        env.update(
            {
                "EDGEFLAGS_STREAM_URL": f"http://127.0.0.1:{stream_port}",
                "EDGEFLAGS_STREAM_HEARTBEAT_S": "0.5",
                "EDGEFLAGS_STREAM_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                "EDGEFLAGS_STREAM_MAX_PER_ADDRESS": str(MAX_PER_ADDRESS),
                "EDGEFLAGS_NUM_PROXIES": "1",  # the cap tests come "from" several addresses
                "EDGEFLAGS_METRICS_TOKEN": METRICS_TOKEN,
            }
        )
        manage(env, "migrate", "--no-input")
        export = tmp / "unleash.json"
        export.write_text(json.dumps(EXPORT))
        seeded = seed(env, export=export, scopes=("client", "server"))
        keys, token = seeded.keys, seeded.token
        web_port = free_port()
        with (
            running("web", web_server_argv(web_port), env, tmp) as web,
            running("stream", stream_server_argv(stream_port), env, tmp) as stream,
            running("stream-b", stream_server_argv(stream_b_port), env, tmp) as stream_b,
        ):
            wait_for_http(f"http://127.0.0.1:{web_port}/healthz", web)
            wait_for_http(f"http://127.0.0.1:{stream_port}/healthz", stream)
            wait_for_http(f"http://127.0.0.1:{stream_b_port}/healthz", stream_b)
            yield Stack(
                f"http://127.0.0.1:{web_port}",
                f"http://127.0.0.1:{stream_port}",
                keys[0],
                keys[1],
                token,
                env,
                f"http://127.0.0.1:{stream_b_port}",
            )
            log = web.log() + stream.log() + stream_b.log()
        for secret in keys:
            assert secret not in log, "a key reached a server log"


def _bulk(stack: Stack, query: str = "", etag: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.client_key}"}
    if etag:
        headers["If-None-Match"] = etag
    return requests.post(
        f"{stack.web}/ofrep/v1/evaluate/flags{query}",
        json={"context": {"targetingKey": "user-1"}},
        headers=headers,
        timeout=5,
    )


def test_bulk_evaluation__advertises_the_stream_under_both_names(stack: Stack) -> None:
    body = _bulk(stack).json()

    expected = [{"type": "sse", "url": stack.flags_url(), "inactivityDelaySec": 120}]
    assert body["eventStreams"] == expected
    assert body["refreshConnections"] == expected
    server = requests.post(
        f"{stack.web}/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "u"}},
        headers={"Authorization": f"Bearer {stack.server_key}"},
        timeout=5,
    ).json()
    # A server key is never put into a URL: its SDK sends the header.
    assert server["eventStreams"][0]["url"] == f"{stack.stream}/stream/v1/flags"


def test_change__event_within_1s_on_every_stream_process__refetch_gets_the_new_answer(
    stack: Stack,
) -> None:
    stream = EventStream(stack.flags_url())
    other = EventStream(stack.flags_url().replace(stack.stream, stack.stream_b))
    other.next()
    assert stream.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert stream.response.getheader("Access-Control-Allow-Origin") == "*"
    opening = stream.next()
    assert opening.data is None  # the resume point only
    assert opening.id is not None
    assert stream.retry == 2000
    before = _bulk(stack)

    changed_at = stack.set_enabled("smart-reply", False)
    event = stream.next_event(timeout=2)
    elapsed = time.monotonic() - changed_at
    on_other = other.next_event(timeout=2)
    elapsed_other = time.monotonic() - changed_at

    assert elapsed < 1.0, f"the event came {elapsed:.2f} s after the change"
    assert elapsed_other < 1.0, f"the other process' event came {elapsed_other:.2f} s after"
    assert on_other.data == event.data
    assert event.data is not None
    assert event.data["type"] == "refetchEvaluation"
    assert event.data["etag"] == f'"v{event.id}"'
    assert int(str(event.id)) > int(str(opening.id))
    assert isinstance(event.data["lastModified"], int)
    # The refetch the event triggers (flagConfigEtag, as the OFREP providers send it) gets
    # the answer after the change from this process, however recently it checked.
    refetch = _bulk(stack, f"?flagConfigEtag={event.data['etag']}", before.headers["ETag"])
    assert refetch.status_code == 200
    flags = {flag["key"]: flag for flag in refetch.json()["flags"]}
    assert flags["smart-reply"]["value"] is False
    assert (
        flags["inbox-digest"]
        == {flag["key"]: flag for flag in before.json()["flags"]}["inbox-digest"]
    )
    stream.close()
    other.close()
    stack.set_enabled("smart-reply", True)


def test_flag_config_etag__not_ours__400_naming_the_parameter(stack: Stack) -> None:
    response = _bulk(stack, "?flagConfigEtag=abc")

    assert response.status_code == 400
    assert response.json()["errorDetails"].startswith("flagConfigEtag:")


def test_last_event_id__older__the_missed_change_at_once__current__nothing(stack: Stack) -> None:
    stream = EventStream(stack.flags_url())
    current = stream.next().id
    stream.close()
    stack.set_enabled("inbox-digest", False)  # missed: nobody is connected
    time.sleep(0.5)

    resumed = EventStream(stack.flags_url(), {"Last-Event-ID": str(current)})
    missed = resumed.next(timeout=2)
    up_to_date = EventStream(stack.flags_url(), {"Last-Event-ID": str(missed.id)})
    opening = up_to_date.next(timeout=2)

    assert missed.data is not None
    assert missed.data["type"] == "refetchEvaluation"
    assert int(str(missed.id)) > int(str(current))
    assert opening.data is None
    assert opening.id == missed.id
    resumed.close()
    up_to_date.close()
    stack.set_enabled("inbox-digest", True)


def test_idle_stream__heartbeats__and_a_publish_that_changes_no_answer_sends_no_event(
    stack: Stack,
) -> None:
    time.sleep(1)  # the earlier tests' last changes have reached the stream
    stream = EventStream(stack.flags_url())
    stream.next()

    # A new API key publishes a version, but no flag's answer differs.
    manage(stack.env, "create_api_key", "--environment", "production", "--scope", "client")
    blocks = [stream.next(timeout=2) for _ in range(3)]

    assert [block.data for block in blocks] == [None, None, None]
    assert all(block.comments == ["keep-alive"] for block in blocks)
    stream.close()


def test_snapshot_stream__server_key_in_header__version_notices(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.server_key}"}
    stream = EventStream(f"{stack.stream}/stream/v1/snapshot", headers)
    stream.next()

    stack.set_enabled("smart-reply", False)
    event = stream.next_event(timeout=2)
    assert event.data is not None
    snapshot = requests.get(
        f"{stack.web}/api/v1/snapshot?flagConfigEtag={event.data['etag']}",
        headers=headers,
        timeout=5,
    ).json()

    assert event.data["type"] == "refetchSnapshot"
    assert event.data["version"] == int(str(event.id))
    assert snapshot["version"] >= event.data["version"]
    assert next(f for f in snapshot["flags"] if f["key"] == "smart-reply")["enabled"] is False
    stream.close()
    stack.set_enabled("smart-reply", True)


@pytest.mark.parametrize(
    ("path", "headers", "status", "field"),
    [
        ("/stream/v1/flags", {}, 401, "Authorization"),
        ("/stream/v1/flags?key=efc_not-a-key", {}, 401, "Authorization"),
        ("/stream/v1/flags?key=SERVER", {}, 400, "key"),
        ("/stream/v1/snapshot?key=CLIENT", {}, 403, "Authorization"),
        ("/stream/v1/nothing", {}, 404, "path"),
    ],
)
def test_refused_connections__status_and_field(
    stack: Stack, path: str, headers: dict[str, str], status: int, field: str
) -> None:
    path = path.replace("SERVER", stack.server_key).replace("CLIENT", stack.client_key)

    response = requests.get(f"{stack.stream}{path}", headers=headers, timeout=5)

    assert response.status_code == status
    assert response.json()["errorDetails"].startswith(f"{field}:")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def _set_allowed_origins(stack: Stack, origins: str) -> None:
    """Set production's allowed origins and publish (a new key: every publish reloads the
    keys, and with them the origins), in one child process."""
    manage(
        stack.env,
        "shell",
        "-c",
        "from access.api_keys import api_key_create\n"
        "from rollout.models import Environment\n"
        "Environment.objects.filter(key='production').update("
        f"allowed_origins={origins!r})\n"
        "api_key_create(environment=Environment.objects.get(key='production'), "
        "scope='client', name='publish')\n",
    )
    time.sleep(0.6)  # the stream's store has loaded the keys again


def test_environment_origins__other_origin_refused_listed_origin_served(stack: Stack) -> None:
    _set_allowed_origins(stack, "https://shop.example")
    try:
        refused = requests.get(
            stack.flags_url(), headers={"Origin": "https://evil.example"}, timeout=5
        )
        served = EventStream(stack.flags_url(), {"Origin": "https://shop.example"})
        assert refused.status_code == 403
        assert "https://evil.example" in refused.json()["errorDetails"]
        assert served.status == 200
        served.close()
    finally:
        _set_allowed_origins(stack, "")


def test_caps__per_address_429__per_process_503__and_the_connection_gauge(stack: Stack) -> None:
    def from_address(address: str) -> EventStream:
        return EventStream(stack.flags_url(), {"X-Forwarded-For": address})

    held = [from_address("10.0.0.1") for _ in range(MAX_PER_ADDRESS)]
    over_address = from_address("10.0.0.1")
    held += [from_address(f"10.0.1.{n}") for n in range(MAX_CONNECTIONS - MAX_PER_ADDRESS)]
    over_capacity = from_address("10.0.2.1")
    metrics = requests.get(
        f"{stack.web}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    ).text
    for stream in held:
        stream.close()

    assert all(stream.status == 200 for stream in held)
    assert over_address.status == 429
    assert over_address.response.getheader("Retry-After") == "5"
    assert over_capacity.status == 503
    assert "EDGEFLAGS_STREAM_MAX_CONNECTIONS" in over_capacity.json()["errorDetails"]
    # The web server's /metrics adds up every process of the machine, the stream's included.
    assert total(metrics, "edgeflags_stream_connections", stream="flags") == MAX_CONNECTIONS
    assert total(metrics, "edgeflags_stream_capacity") == 2 * MAX_CONNECTIONS  # two processes
    assert total(metrics, "edgeflags_stream_refused_total", reason="capacity") >= 1
    assert total(metrics, "edgeflags_stream_refused_total", reason="address") >= 1
    assert total(metrics, "edgeflags_stream_events_total", stream="flags") >= 1


def _read_to_the_end(stream: EventStream) -> None:
    while True:
        stream.next(timeout=3)  # EOFError when the server ends the stream


def test_key_revoked__its_open_stream_ends_within_a_second(stack: Stack) -> None:
    key = manage(stack.env, "create_api_key", "--environment", "production", "--scope", "client")
    key = key.strip()
    time.sleep(0.6)  # the stream has loaded the new key
    stream = EventStream(stack.flags_url(key))
    stream.next()

    manage(
        stack.env,
        "shell",
        "-c",
        "from access.api_keys import api_key_revoke\n"
        "from rollout.models import ApiKey\n"
        "from rollout.snapshots.store import hash_api_key\n"
        f"api_key_revoke(api_key=ApiKey.objects.get(key_hash=hash_api_key({key!r})))\n",
    )
    revoked_at = time.monotonic()
    with pytest.raises(EOFError):
        _read_to_the_end(stream)
    ended = time.monotonic() - revoked_at
    again = requests.get(stack.flags_url(key), timeout=5)

    assert ended < 1.0
    assert again.status_code == 401
