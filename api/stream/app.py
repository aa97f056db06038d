"""The change stream's ASGI application (OFREP ADR 0008, "SSE for bulk evaluation changes").

Two streams, both `text/event-stream`, both notification-only (the client refetches):

- `GET /stream/v1/flags`: `{"type": "refetchEvaluation", "etag": "\"v12\"", "lastModified": …}`
  when an answer of the key's environment may have changed. What bulk evaluations advertise
  in `eventStreams`; the client sends the etag back as `flagConfigEtag`, and the API process
  that answers checks for that version first (it may not have seen it yet).
- `GET /stream/v1/snapshot` (server keys): `{"type": "refetchSnapshot", "version": 12, …}`,
  for SDKs that evaluate locally from `/api/v1/snapshot`.

A key comes in the Authorization or X-API-Key header, or, for client keys only, in the `key`
query parameter, because EventSource cannot send headers (client keys are public; a server
key never goes into a URL, which proxies and browsers keep). Nothing here logs a URL.

Every event has the version as its `id`, so a reconnecting EventSource sends `Last-Event-ID`
and gets at once the change it missed (only the latest: notifications coalesce). A stream
that has nothing to say sends a comment every EDGEFLAGS_STREAM_HEARTBEAT_S, which keeps
proxies from closing it and lets the server notice a client that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from api.cors import refused_origin
from api.rate_limits import address_through_proxies
from api.stream.etags import stream_etag
from api.stream.hub import Change, Hub, Listener
from api.stream.watch import Watcher
from ops import metrics
from rollout.snapshots.store import KeyInfo, SnapshotStore

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STREAMS = {"/stream/v1/flags": "flags", "/stream/v1/snapshot": "snapshot"}
MAX_QUERY_BYTES = 1024
MAX_KEY_CHARS = 200
READY_WAIT_S = 10.0  # a connection made while the process starts waits this long for it
RETRY_MS = 2000  # how long EventSource waits before reconnecting (the SSE `retry` field)
RETRY_AFTER_S = "5"
_LAST_EVENT_ID = re.compile(r"^[0-9]{1,18}$")

_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Retry-After"),
]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"GET, OPTIONS"),
    (b"access-control-allow-headers", b"authorization, x-api-key, last-event-id"),
    (b"access-control-max-age", b"86400"),
]
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events on as they come
    *_CORS,
]
_HEARTBEAT = b": keep-alive\n\n"


class Refused(Exception):
    """A connection refused with a JSON error body (OFREP's errorCode/errorDetails)."""

    def __init__(self, status: int, code: str, details: str, reason: str):
        super().__init__(details)
        self.status, self.code, self.details, self.reason = status, code, details, reason


class StreamApplication:
    """The ASGI callable: lifespan starts the watcher, http serves the streams."""

    def __init__(self, store: SnapshotStore, hub: Hub | None = None):
        self.store = store
        self.hub = hub or Hub()
        self._watcher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            self._start()  # also without lifespan support (some servers, some tests)
            await self._http(scope, receive, send)

    # --- lifecycle -----------------------------------------------------------------------
    def _start(self) -> None:
        if self._watcher is None:
            watcher = Watcher(self.hub, self.store, settings.EDGEFLAGS_STREAM_CHECK_INTERVAL_S)
            self._watcher = asyncio.create_task(watcher.run())
            metrics.stream_capacity.set(settings.EDGEFLAGS_STREAM_MAX_CONNECTIONS)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Streams end cleanly, so EventSources reconnect (to another process).
                self.hub.close_all()
                if self._watcher is not None:
                    self._watcher.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- requests ------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            body = orjson.dumps({"status": "ok", "connections": self.hub.connections})
            await _respond(send, 200, body, [(b"content-type", b"application/json")])
            return
        stream = STREAMS.get(path)
        try:
            if stream is None:
                raise Refused(404, "NOT_FOUND", f"path: no stream {path[:100]}", "bad_request")
            if method == "OPTIONS":
                await _respond(send, 204, b"", _PREFLIGHT)
                return
            if method != "GET":
                raise Refused(405, "METHOD_NOT_ALLOWED", "method: use GET", "bad_request")
            listener, last_id = await self._admit(scope, stream)
        except Refused as refused:
            metrics.stream_refused.labels(refused.reason).inc()
            await _refuse(send, refused)
            return
        await self._serve(send, receive, stream, listener, last_id)

    async def _admit(self, scope: Scope, stream: str) -> tuple[Listener, int | None]:
        headers = _headers(scope)
        query_string = scope.get("query_string", b"")
        if len(query_string) > MAX_QUERY_BYTES:
            raise Refused(400, "INVALID_CONTEXT", "query: too long", "bad_request")
        query = parse_qs(query_string.decode("latin-1"))
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await self.hub.ready.wait()
        except TimeoutError:
            raise Refused(
                503, "GENERAL", "stream: starting, snapshots not loaded yet", "unavailable"
            ) from None
        info = self._key(headers, query)
        if stream == "snapshot" and info.scope != "server":
            raise Refused(
                403, "FORBIDDEN", "Authorization: this stream needs a server key", "forbidden"
            )
        refusal = refused_origin(headers.get("origin"), info.allowed_origins)
        if refusal is not None:
            raise Refused(403, "FORBIDDEN", refusal, "forbidden")
        if self.hub.latest(info.environment) is None:
            raise Refused(
                503,
                "GENERAL",
                "snapshot: no ruleset published for this environment yet",
                "unavailable",
            )
        peer = scope.get("client") or ("", 0)
        address = address_through_proxies(headers.get("x-forwarded-for", ""), str(peer[0]))
        if self.hub.connections >= settings.EDGEFLAGS_STREAM_MAX_CONNECTIONS:
            raise Refused(
                503,
                "GENERAL",
                "stream: this process holds all the connections it may "
                "(EDGEFLAGS_STREAM_MAX_CONNECTIONS); poll meanwhile",
                "capacity",
            )
        if self.hub.connections_from(address) >= settings.EDGEFLAGS_STREAM_MAX_PER_ADDRESS:
            raise Refused(
                429,
                "RATE_LIMITED",
                "stream: more connections from your address than EDGEFLAGS_STREAM_MAX_PER_ADDRESS",
                "address",
            )
        last_id = headers.get("last-event-id", "").strip()
        listener = Listener(info.environment, address, info.key_id, headers.get("origin"))
        return listener, int(last_id) if _LAST_EVENT_ID.match(last_id) else None

    def _key(self, headers: dict[str, str], query: dict[str, list[str]]) -> KeyInfo:
        authorization = headers.get("authorization", "")
        in_query = False
        if authorization[:7].lower() == "bearer ":
            raw = authorization[7:].strip()
        elif headers.get("x-api-key"):
            raw = headers["x-api-key"].strip()
        else:
            raw, in_query = (query.get("key") or [""])[0].strip(), True
        if not raw:
            raise Refused(
                401,
                "UNAUTHORIZED",
                "Authorization: missing API key (send 'Authorization: "
                "Bearer <key>', or a client key as the key query parameter)",
                "unauthorized",
            )
        info = self.store.held_key(raw[:MAX_KEY_CHARS]) if len(raw) <= MAX_KEY_CHARS else None
        if info is None or info.revoked:
            raise Refused(
                401, "UNAUTHORIZED", "Authorization: unknown or revoked API key", "unauthorized"
            )
        if in_query and info.scope != "client":
            raise Refused(
                400,
                "INVALID_CONTEXT",
                "key: a server key goes in the Authorization header, "
                "never in a URL (URLs are kept by proxies and browsers)",
                "bad_request",
            )
        return info

    async def _serve(
        self, send: Send, receive: Receive, stream: str, listener: Listener, last_id: int | None
    ) -> None:
        hub = self.hub
        hub.add(listener)
        gauge = metrics.stream_connections.labels(stream)
        events = metrics.stream_events.labels(stream)
        gauge.inc()
        watching = asyncio.create_task(_until_disconnect(receive, listener))
        try:
            change = hub.latest(listener.environment)
            sent = change.version if change is not None else 0
            first = b"retry: %d\n" % RETRY_MS
            if change is not None and last_id is not None and last_id < change.version:
                first += _event(stream, change)  # missed while away
                events.inc()
            else:
                first += b"id: %d\n\n" % sent  # the resume point; dispatches nothing
            await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            heartbeat = settings.EDGEFLAGS_STREAM_HEARTBEAT_S
            while not listener.closed:
                try:
                    async with asyncio.timeout(heartbeat):
                        await listener.wake.wait()
                except TimeoutError:
                    await send(
                        {"type": "http.response.body", "body": _HEARTBEAT, "more_body": True}
                    )
                    continue
                listener.wake.clear()
                change = hub.latest(listener.environment)
                if listener.closed or change is None or change.version <= sent:
                    continue
                sent = change.version
                await send(
                    {
                        "type": "http.response.body",
                        "body": _event(stream, change),
                        "more_body": True,
                    }
                )
                events.inc()
        except OSError:
            pass  # the client went away mid-write
        except Exception as exc:  # noqa: BLE001 - servers raise their own "disconnected" types
            if not listener.closed:
                logger.warning("stream ended on %s", type(exc).__name__)
        finally:
            hub.remove(listener)
            gauge.dec()
            watching.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive, listener: Listener) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            listener.close()
            return


def _event(stream: str, change: Change) -> bytes:
    if stream == "flags":
        data: dict[str, Any] = {
            "type": "refetchEvaluation",
            "etag": stream_etag(change.version),
            "lastModified": change.last_modified,
        }
    else:
        data = {
            "type": "refetchSnapshot",
            "version": change.version,
            "etag": stream_etag(change.version),
            "lastModified": change.last_modified,
        }
    return b"id: %d\ndata: %s\n\n" % (change.version, orjson.dumps(data))


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, refused: Refused) -> None:
    headers = [(b"content-type", b"application/json"), *_CORS]
    if refused.status in (429, 503):
        headers.append((b"retry-after", RETRY_AFTER_S.encode()))
    if refused.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="edgeflags"'))
    body = orjson.dumps({"errorCode": refused.code, "errorDetails": refused.details})
    await _respond(send, refused.status, body, headers)
