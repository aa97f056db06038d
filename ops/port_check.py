"""Refuse to start a web server on a port another process already listens on.

granian binds with SO_REUSEPORT, so on Linux a second server started on a busy port binds
too, runs silently and takes a share of the first one's connections. The Procfile's `web`
command and `make run` call this first: a plain bind (SO_REUSEADDR, so connections of an
earlier run in TIME_WAIT don't count, but no SO_REUSEPORT) fails while anything listens there.

Standard library only: it runs before the virtualenv's packages are needed. The check and
granian's own bind are two steps, so two servers started in the same instant can still both
bind; what this stops is the common case, a server started beside one already running.
"""

from __future__ import annotations

import errno
import socket
import sys


def port_busy(host: str, port: int) -> str | None:
    """Why `host:port` cannot be bound (None when it can)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"{host} is not an address this machine can listen on ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use by another process"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].isdigit():
        print("usage: python -m ops.port_check HOST PORT [VARIABLE]", file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    variable = argv[2] if len(argv) == 3 else "EDGEFLAGS_PORT"  # the setting that chooses it
    problem = port_busy(host, port)
    if problem is None:
        return 0
    print(
        f"Edgeflags: {problem}. Stop the other server or choose another port "
        f"({variable}={port + 10} make run).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
