"""Publishing snapshot versions: every change to what the engine evaluates makes a new one.

The snapshot is compiled inside the transaction that changes the rows, before it commits,
and stored there as the environment's next version: a change that cannot be published fails
its own request (SnapshotUnpublishable, a 400 naming the field) instead of every later
publish of its environment. Only the announcement (Redis) waits for the commit.

A part that cannot be published although this transaction did not change it (bad data
written around the services) does not block anyone else's change, above all not the kill
switch: it keeps its last published form (or is left out), the failure is logged as an
error and recorded (PublishFailure, shown by /readyz as `snapshot` degraded), and the
periodic republish (snapshot_repair) retries until a publish is clean.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max

from ops import metrics
from ops.json_input import MAX_JSON_DEPTH, JsonInputError, check_json, text_problem
from rollout.engine.document import snapshot_from_document
from rollout.engine.shapes import flag_from_json, segment_from_json
from rollout.models import Environment, Flag, PublishFailure, SnapshotVersion
from rollout.snapshots.compile import compile_environment
from rollout.snapshots.store import VERSIONS_KEY, _redis, announce_version

logger = logging.getLogger(__name__)

# The document's own structure wraps client values in a few levels (flags[i].ladder.rungs[j]
# .uiState…); values themselves are held to MAX_JSON_DEPTH where they come in.
DOCUMENT_DEPTH = MAX_JSON_DEPTH + 8


class SnapshotUnpublishable(ValueError):
    """This transaction's change would make its environment's snapshot unpublishable.

    `field` names the part (``flags.lead-summary.offValue``); the management API's error
    handler answers it as a 400 like any other "field: message" ValueError.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _PublishFailed(Exception):
    """The environment could not be compiled at all, for reasons this change is not to blame."""


def _label(text: str) -> str:
    # Keys go into error messages and /readyz, which must themselves encode.
    return ascii(text)[1:-1] if text_problem(text) else text


def _problem(part: Any, where: str, load: Callable[[Any], Any]) -> str | None:
    """Why `part` of a document cannot be published (stored, encoded, loaded), or None."""
    try:
        check_json(part, field=where, max_depth=DOCUMENT_DEPTH)
        orjson.dumps(part)
        load(part)
    except JsonInputError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any encode or load failure is the part's problem
        return f"{where}: {exc.__class__.__name__}: {exc}"
    return None


@dataclass
class _Blame:
    """What the current transaction changed: a bad part of it fails the transaction."""

    flag_ids: set[int] = field(default_factory=set)
    segment_ids: set[int] = field(default_factory=set)
    _flag_keys: set[str] | None = None

    def add(self, flag_ids: Iterable[int], segment_ids: Iterable[int]) -> None:
        self.flag_ids.update(flag_ids)
        self.segment_ids.update(segment_ids)
        self._flag_keys = None

    def flag_keys(self) -> set[str]:
        if self._flag_keys is None:  # asked only when a part fails
            keys = Flag.objects.filter(pk__in=self.flag_ids).values_list("key", flat=True)
            self._flag_keys = set(keys)
        return self._flag_keys


def _previous_document(environment: Environment) -> dict[str, Any]:
    row = (
        SnapshotVersion.objects.filter(environment=environment)
        .order_by("-version")
        .values_list("document", flat=True)
        .first()
    )
    return row if isinstance(row, dict) else {}


def _checked_document(environment: Environment, blame: _Blame) -> tuple[dict[str, Any], list[str]]:
    """The compiled document, each part checked; returns it with what had to be kept back.

    Raises SnapshotUnpublishable for a bad part this transaction changed, _PublishFailed when
    the environment cannot be compiled at all.
    """
    try:
        document = compile_environment(environment)
    except DatabaseError:
        raise
    except Exception as exc:
        raise _PublishFailed(f"cannot be compiled: {exc.__class__.__name__}: {exc}") from exc
    previous: dict[str, Any] | None = None
    kept_back: list[str] = []

    def earlier(part: str, identity: tuple[str, Any] | None = None) -> Any:
        """The part as last published: the list item whose `identity` matches, or all of it."""
        nonlocal previous
        if previous is None:
            previous = _previous_document(environment)
        found = previous.get(part)
        if identity is None or not isinstance(found, list):
            return found
        name, value = identity
        return next((i for i in found if isinstance(i, dict) and i.get(name) == value), None)

    flags = []
    for flag in document["flags"]:
        key = flag["key"]
        problem = _problem(flag, f"flags.{_label(key)}", flag_from_json)
        if problem is None:
            flags.append(flag)
            continue
        if key in blame.flag_keys():
            where, _, message = problem.partition(": ")
            raise SnapshotUnpublishable(where, message)
        kept = earlier("flags", ("key", key))
        if kept is not None and _problem(kept, "", flag_from_json) is None:
            flags.append(kept)
            kept_back.append(f"{problem} (serving its last published form)")
        else:
            kept_back.append(f"{problem} (left out)")
    document["flags"] = flags

    segments = []
    for segment in document["segments"]:
        problem = _problem(segment, f"segments.{_label(segment['key'])}", segment_from_json)
        if problem is None:
            segments.append(segment)
        elif segment["id"] in blame.segment_ids:
            where, _, message = problem.partition(": ")
            raise SnapshotUnpublishable(where, message)
        else:
            kept = earlier("segments", ("id", segment["id"]))
            if kept is not None and _problem(kept, "", segment_from_json) is None:
                segments.append(kept)
            kept_back.append(problem)
    document["segments"] = segments

    if "capabilityModel" in document:
        model_part = {k: document[k] for k in ("capabilityModel", "segmentLabels")}
        problem = _problem(model_part, "capabilityModel", lambda part: None)
        if problem is not None:
            earlier_model = earlier("capabilityModel")
            document.pop("segmentLabels", None)
            document.pop("capabilityModel")
            if earlier_model is not None:
                document["capabilityModel"] = earlier_model
                document["segmentLabels"] = earlier("segmentLabels") or {}
            kept_back.append(problem)

    try:
        snapshot_from_document(document)  # what every API process will do with it
    except Exception as exc:
        message = f"{exc.__class__.__name__}: {exc}"
        if blame.flag_ids or blame.segment_ids:
            raise SnapshotUnpublishable("snapshot", message) from exc
        raise _PublishFailed(f"cannot be loaded by the engine: {message}") from exc
    return document, kept_back


def _record_failure(environment: Environment, problem: str) -> None:
    logger.error("snapshot of %s: %s", environment.key, problem)
    PublishFailure.objects.update_or_create(
        environment=environment, defaults={"problem": problem[:4000]}
    )


def _store(
    environment: Environment, document: dict[str, Any], version: int | None, reason: str
) -> int:
    """Write `document` as the environment's version in this transaction; returns it."""
    if version is not None:
        # Later changes of the same transaction replace the version it already wrote, so
        # one transaction publishes one version per environment.
        document["version"] = version
        updated = SnapshotVersion.objects.filter(environment=environment, version=version).update(
            document=document, etag=_etag(document)
        )
        if updated:
            return version
    latest = SnapshotVersion.objects.filter(environment=environment).aggregate(v=Max("version"))
    version = (latest["v"] or 0) + 1
    document["version"] = version
    SnapshotVersion.objects.create(
        environment=environment,
        version=version,
        document=document,
        etag=_etag(document),
        reason=reason[:200],
    )
    SnapshotVersion.objects.filter(
        environment=environment, version__lte=version - settings.EDGEFLAGS_SNAPSHOT_VERSIONS_KEPT
    ).delete()
    return version


def _etag(document: dict[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(document), digest_size=16).hexdigest()


def _content(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("version", "publishedAt")}


class _PendingPublish:
    """The versions one transaction wrote, settled and announced when it commits."""

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}  # environment id -> reason of its first change
        self.versions: dict[int, int] = {}  # environment id -> version written
        self.documents: dict[int, dict[str, Any]] = {}
        self.keys: dict[int, str] = {}
        # environment id -> how its latest compile failed (counted once, when committed)
        self.failed: dict[int, str | None] = {}
        self.blame = _Blame()
        self.done = False
        # Inside publish_batch(): environment ids (None = all) to compile when it ends.
        self.batch_depth = 0
        self.batched: set[int] | None = set()
        self.batch_reason = ""

    def __call__(self) -> None:
        self.done = True
        for env_id in self.reasons:
            version = self.versions.get(env_id)
            try:
                version = self._settle(env_id, version)
            except Exception:  # the commit is done: report, never fail the request now
                logger.exception(
                    "snapshot of environment %s: could not settle after commit", env_id
                )
                self.failed[env_id] = "settle_error"
            failed = self.failed.get(env_id)
            if failed is not None:
                metrics.publish_failures.labels(self.keys.get(env_id, str(env_id)), failed).inc()
            if version is not None:
                announce_version(self.keys[env_id], version)

    def _settle(self, env_id: int, version: int | None) -> int | None:
        # A row changed without a signal (a queryset update) after the last compile of the
        # transaction, or deleted (deletions compile here only), is in the committed state
        # alone: compile once more, and publish a follow-up version when it differs, so what
        # is served is always what is stored.
        with transaction.atomic():
            environment = Environment.objects.select_for_update().filter(pk=env_id).first()
            if environment is None:
                return None
            self.keys[env_id] = environment.key
            try:
                document, kept_back = _checked_document(environment, _Blame())
            except _PublishFailed as exc:
                _record_failure(environment, str(exc))
                self.failed[env_id] = "unpublishable"
                return version
            written = self.documents.get(env_id)
            if written is not None and _content(document) == _content(written):
                return version
            version = _store(environment, document, None, self.reasons[env_id])
            self.failed[env_id] = _settle_failure(environment, kept_back)
            return version

    def publish(self, environment: Environment) -> None:
        reason = self.reasons.setdefault(environment.pk, "change")
        self.keys[environment.pk] = environment.key
        try:
            document, kept_back = _checked_document(environment, self.blame)
        except _PublishFailed as exc:
            _record_failure(environment, str(exc))
            self.failed[environment.pk] = "unpublishable"
            return
        self.versions[environment.pk] = _store(
            environment, document, self.versions.get(environment.pk), reason
        )
        self.documents[environment.pk] = document
        self.failed[environment.pk] = _settle_failure(environment, kept_back)


def _settle_failure(environment: Environment, kept_back: list[str]) -> str | None:
    """Record or clear the environment's publish failure; its kind, if any."""
    if kept_back:
        _record_failure(environment, "; ".join(kept_back))
        return "kept_back"
    PublishFailure.objects.filter(environment=environment).delete()
    return None


def _pending() -> _PendingPublish:
    connection = transaction.get_connection()
    for _, func, _ in connection.run_on_commit:
        if isinstance(func, _PendingPublish) and not func.done:
            return func
    pending = _PendingPublish()
    transaction.on_commit(pending)
    return pending


def snapshot_publish_on_commit(
    *,
    environment_ids: set[int] | None,
    reason: str,
    flag_ids: Iterable[int] = (),
    segment_ids: Iterable[int] = (),
    deletion: bool = False,
) -> None:
    """Compile and store the next version of the given environments (None = all) in the
    current transaction; announce them when it commits.

    `flag_ids` and `segment_ids` name what the change touched: a part of them that cannot be
    published raises SnapshotUnpublishable, and the transaction rolls back. Saving one flag
    in the admin touches many rows; all of them end in one new version per environment.
    A `deletion` adds nothing that could fail to publish, and may be part of deleting the
    environment itself: it is compiled only once the transaction has committed.
    """
    with transaction.atomic(savepoint=False):
        pending = _pending()
        pending.blame.add(flag_ids, segment_ids)
        if pending.batch_depth and not deletion:
            if environment_ids is None or pending.batched is None:
                pending.batched = None
            else:
                pending.batched.update(environment_ids)
            for env_id in environment_ids or ():
                pending.reasons.setdefault(env_id, reason)
            pending.batch_reason = pending.batch_reason or reason
            return
        if deletion:
            ids = Environment.objects.values_list("pk", flat=True)
            if environment_ids is not None:
                ids = ids.filter(pk__in=environment_ids)
            for env_id in ids:
                pending.reasons.setdefault(env_id, reason)
            return
        environments = Environment.objects.select_for_update().order_by("pk")
        if environment_ids is not None:
            environments = environments.filter(pk__in=environment_ids)
        # Locked until commit, in primary-key order (no deadlocks between publishers): a
        # concurrent change of the same environment compiles after this one has committed,
        # so the newest version always holds both.
        for environment in environments:
            pending.reasons.setdefault(environment.pk, reason)
            pending.publish(environment)


@contextmanager
def publish_batch() -> Iterator[None]:
    """Compile each changed environment once, when the block ends, instead of at every change
    inside it: for bulk writes (demo data, imports, a replayed history) that would otherwise
    compile the whole environment per row.

    Still inside the transaction, before it commits: a bad part that the block changed fails
    the block (SnapshotUnpublishable), as it would have failed the single change.
    """
    with transaction.atomic():
        pending = _pending()
        pending.batch_depth += 1
        try:
            yield
        finally:
            pending.batch_depth -= 1
        if pending.batch_depth == 0 and (pending.batched is None or pending.batched):
            environment_ids, pending.batched = pending.batched, set()
            reason, pending.batch_reason = pending.batch_reason, ""
            snapshot_publish_on_commit(environment_ids=environment_ids, reason=reason)


@dataclass(frozen=True)
class RepairReport:
    republished: list[str]
    reannounced: list[str]

    def summary(self) -> str:
        return (
            f"republished {', '.join(self.republished) or 'nothing'}; "
            f"re-announced {', '.join(self.reannounced) or 'nothing'}"
        )


def _announced_versions() -> dict[str, int]:
    raw = _redis().hgetall(VERSIONS_KEY)
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def _latest_versions() -> dict[str, int]:
    rows = SnapshotVersion.objects.values("environment__key").annotate(latest=Max("version"))
    return {row["environment__key"]: row["latest"] for row in rows}


def snapshot_repair() -> RepairReport:
    """Republish every environment whose last publish failed, and announce again every
    version Redis missed (it was away at commit); the periodic task runs this."""
    republished = []
    for failure in PublishFailure.objects.select_related("environment"):
        snapshot_publish_on_commit(
            environment_ids={failure.environment_id}, reason="republish after a failed publish"
        )
        republished.append(failure.environment.key)
    reannounced = []
    if settings.REDIS_URL:
        announced = _announced_versions()
        for key, version in _latest_versions().items():
            if announced.get(key, 0) < version:
                announce_version(key, version)
                reannounced.append(key)
    return RepairReport(republished, reannounced)


def check_snapshot() -> str:
    """/readyz: every environment's latest publish succeeded and was announced."""
    problems = [
        f"{failure.environment.key}: {failure.problem}"
        for failure in PublishFailure.objects.select_related("environment")
    ]
    latest = _latest_versions()
    if settings.REDIS_URL:
        try:
            announced = _announced_versions()
        except redis.RedisError as exc:
            problems.append(f"versions could not be read from Redis: {exc}")
        else:
            problems.extend(
                f"{key}: v{version} published but not announced (Redis has "
                f"v{announced.get(key, 0)}); API processes see it within "
                "a few seconds, the periodic republish announces it"
                for key, version in sorted(latest.items())
                if announced.get(key, 0) < version
            )
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"{len(latest)} environment(s) published"
