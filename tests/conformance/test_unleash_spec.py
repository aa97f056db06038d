"""The peer suite: every case of the Unleash client specification, through the engine.

Three paths, so that a team that migrates keeps every client's answer: the pure one
(Unleash document -> definitions -> build_snapshot), the same through the JSON shapes the
importer stores and the snapshot document carries, and the product one (import_unleash into
the database -> snapshot compiler -> engine).
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate
from rollout.engine.snapshot import build_snapshot
from rollout.engine.types import Decision
from rollout.engine.unleash import (
    context_from_unleash,
    convert,
    from_unleash,
    to_unleash_variant,
)
from tests.conformance.cases import EXPECTED_CASES, Case, cases_of, load_files

# Read at collection: a missing specification folder is a collection error, not a skip.
FILES = load_files()
CASES = [case for name, spec in FILES for case in cases_of(name, spec)]


def test_specification__every_file__279_cases_found() -> None:
    assert len(CASES) == EXPECTED_CASES
    assert len({c.file for c in CASES}) == 22


def assert_case(case: Case, decision: Decision) -> None:
    """The decision answers the case as an Unleash SDK would."""
    if case.expected_enabled is not None:
        assert decision.enabled is case.expected_enabled, case.id
    else:
        assert to_unleash_variant(decision) == case.expected_variant, case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_specification__engine__matches_unleash(case: Case) -> None:
    converted = from_unleash(case.state)
    snapshot = build_snapshot(1, "conformance", converted.flags, converted.segments)

    decision = evaluate(snapshot, case.toggle, context_from_unleash(case.context))

    assert_case(case, decision)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_specification__through_the_snapshot_document__matches_unleash(case: Case) -> None:
    snapshot = snapshot_from_document(convert(case.state).document())

    decision = evaluate(snapshot, case.toggle, context_from_unleash(case.context))

    assert_case(case, decision)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "spec"), FILES, ids=[name for name, _ in FILES])
def test_specification__imported_into_the_database__matches_unleash(
    name: str, spec: dict[str, Any]
) -> None:
    from interop.unleash import unleash_import
    from rollout.services import environment_create
    from rollout.snapshots.compile import compile_environment

    environment = environment_create(key="conformance")
    unleash_import(document=spec["state"], environment=environment)
    snapshot = snapshot_from_document(compile_environment(environment))

    cases = cases_of(name, spec)
    for case in cases:
        assert_case(case, evaluate(snapshot, case.toggle, context_from_unleash(case.context)))
    assert cases
