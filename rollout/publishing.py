"""Publishing snapshot versions: every change to what the engine evaluates makes a new one."""

from __future__ import annotations

import hashlib

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from rollout.compiler import compile_environment
from rollout.models import Environment, SnapshotVersion
from rollout.snapshot_store import announce_version


@transaction.atomic
def snapshot_publish(*, environment: Environment, reason: str) -> SnapshotVersion:
    """Compile `environment` now and store it as its next version; announce it on commit."""
    # Lock the environment row so concurrent publishes get consecutive version numbers.
    Environment.objects.select_for_update().filter(pk=environment.pk).first()
    latest = SnapshotVersion.objects.filter(environment=environment).aggregate(v=Max("version"))
    version = (latest["v"] or 0) + 1
    document = compile_environment(environment)
    document["version"] = version
    etag = hashlib.blake2b(orjson.dumps(document), digest_size=16).hexdigest()
    snapshot = SnapshotVersion.objects.create(
        environment=environment,
        version=version,
        document=document,
        etag=etag,
        reason=reason[:200],
    )
    stale = SnapshotVersion.objects.filter(
        environment=environment, version__lte=version - settings.EDGEFLAGS_SNAPSHOT_VERSIONS_KEPT
    )
    stale.delete()
    key = environment.key
    transaction.on_commit(lambda: announce_version(key, version))
    return snapshot


class _PendingPublish:
    """The environments one transaction changed, published together when it commits."""

    def __init__(self) -> None:
        self.reasons: dict[int | None, str] = {}  # environment id (None = all) -> reason
        self.done = False

    def __call__(self) -> None:
        self.done = True
        environments = Environment.objects.all()
        if None not in self.reasons:
            environments = environments.filter(pk__in=list(self.reasons))
        fallback = next(iter(self.reasons.values()), "change")
        for environment in environments:
            snapshot_publish(
                environment=environment, reason=self.reasons.get(environment.pk, fallback)
            )


def snapshot_publish_on_commit(*, environment_ids: set[int] | None, reason: str) -> None:
    """Publish the given environments (None = all) once, when the current transaction commits.

    Saving one flag in the admin touches many rows; this gathers them into one new version
    per environment, compiled from the committed state.
    """
    connection = transaction.get_connection()
    pending = next(
        (
            func
            for _, func, _ in connection.run_on_commit
            if isinstance(func, _PendingPublish) and not func.done
        ),
        None,
    )
    if pending is None:
        pending = _PendingPublish()
        for env_id in environment_ids if environment_ids is not None else {None}:
            pending.reasons.setdefault(env_id, reason)
        transaction.on_commit(pending)  # runs at once outside a transaction
        return
    for env_id in environment_ids if environment_ids is not None else {None}:
        pending.reasons.setdefault(env_id, reason)
