"""ASGI entry point of the change stream: `config.stream:application` (the Procfile's
`stream`, granian in ASGI mode). Django is set up first: the stream reads keys and snapshots
through the same store as the API processes."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from api.stream.app import StreamApplication  # noqa: E402 - needs the apps loaded
from rollout.snapshots.store import store  # noqa: E402

application = StreamApplication(store)
