"""A minimal Server-Sent Events reader for tests (http.client: no library between the test
and the bytes the server sends)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Event:
    id: str | None
    data: dict[str, Any] | None
    comments: list[str] = field(default_factory=list)


class EventStream:
    """One open stream: its status and headers, then its events as they come."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 5):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.connection.request(
            "GET", path, headers={"Accept": "text/event-stream", **(headers or {})}
        )
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.retry: int | None = None
        self.last_id: str | None = None

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.response.read()))

    def next(self, timeout: float = 5) -> Event:
        """The next block (event, or comments only), within `timeout` seconds."""
        assert self.connection.sock is not None
        self.connection.sock.settimeout(timeout)
        event_id: str | None = None
        data: list[str] = []
        comments: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if event_id is not None or data or comments:
                    parsed = json.loads("\n".join(data)) if data else None
                    return Event(event_id, parsed, comments)
                continue
            if line.startswith(":"):
                comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    event_id = self.last_id = value
                elif name == "data":
                    data.append(value)
                elif name == "retry":
                    self.retry = int(value)
            if time.monotonic() > deadline:
                raise TimeoutError("no complete event in time")

    def next_event(self, timeout: float = 5) -> Event:
        """The next event that carries data (skipping heartbeats and bare ids)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event.data is not None:
                return event

    def close(self) -> None:
        self.connection.close()
