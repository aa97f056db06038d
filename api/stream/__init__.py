"""The change stream: Server-Sent Events that tell clients a refetch is due (OFREP ADR 0008).

Served by its own ASGI process (the Procfile's `stream`, entry point `config.stream`), so
that thousands of idle connections never hold a thread of the WSGI workers.

- `hub`: who listens to which environment, and the latest change of each (pure asyncio).
- `watch`: keeps the process' snapshot store current and tells the hub of changes, woken by
  the Redis announcement of every publish (other processes, other machines) or its poll
  (the embedded mode, and anything an announcement missed).
- `app`: the ASGI application: keys, origins, caps, SSE framing, heartbeats, Last-Event-ID.
"""
