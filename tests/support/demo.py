"""The demo data for in-process tests: `load_demo` once per session, its rows restored after.

`load_demo` takes seconds (3,000 profiles, a segmentation run, 72 hours of rollout history)
and some forty tests need it. The first test that asks runs the real command on an empty
database and keeps every row it created; later tests get the same rows inserted as they
were (bulk inserts: no signal, so nothing is published twice), the sequences moved past
them and the snapshot store emptied, which leaves the database as the command left it.
A test that asks after it wrote rows of its own gets the real command: the rows it would
restore may not be what the command does on that state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Model

from demo.data import DEMO_KEY_FILE, TRAFFIC_KEY_FILE
from rollout.models import Environment, Flag
from rollout.snapshots.store import store

Rows = dict[type[Model], list[dict[str, Any]]]
KEY_FILES = (DEMO_KEY_FILE, TRAFFIC_KEY_FILE)  # the raw demo keys the command keeps in var/
_created: tuple[Rows, dict[str, str]] | None = None


def _models() -> list[type[Model]]:
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    ]


def _pks() -> dict[type[Model], set[Any]]:
    return {model: set(model._base_manager.values_list("pk", flat=True)) for model in _models()}


def _pristine() -> bool:
    return not Environment.objects.exists() and not Flag.objects.exists()


def _key_files() -> dict[str, str]:
    return {name: (Path(settings.VAR_DIR) / name).read_text() for name in KEY_FILES}


def _restore(created: Rows, key_files: dict[str, str]) -> None:
    # PostgreSQL checks foreign keys at commit (Django makes them deferrable), so the order
    # of the tables does not matter inside the test's transaction.
    for model, rows in created.items():
        model._base_manager.bulk_create([model(**row) for row in rows])
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), list(created)):
            cursor.execute(statement)
    for name, raw in key_files.items():  # a later real load may have made new keys
        (Path(settings.VAR_DIR) / name).write_text(raw)
    store.reset()


def load_demo(publish: Callable[[Callable[[], Any]], Any]) -> None:
    """What `manage.py load_demo` does to the test database, in a fraction of the time."""
    global _created
    if not _pristine():
        publish(lambda: call_command("load_demo", verbosity=0))
        return
    if _created is not None:
        _restore(*_created)
        return
    before = _pks()
    publish(lambda: call_command("load_demo", verbosity=0))
    created: Rows = {}
    for model in _models():
        pk = model._meta.pk.attname
        rows = [row for row in model._base_manager.values() if row[pk] not in before[model]]
        if rows:
            created[model] = rows
    _created = created, _key_files()
