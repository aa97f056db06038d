"""The peer suite: every case of the Unleash client specification, through the engine.

Two paths: the pure one (Unleash document -> snapshot document -> engine) and the product
one (import_unleash into the database -> snapshot compiler -> engine), so that a team that
migrates keeps every client's answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate
from rollout.engine.types import Decision
from rollout.engine.unleash import context_from_unleash, convert
from tests.conformance.cases import EXPECTED_CASES, Case, cases_of, load_cases, load_files

CASES = load_cases()


def test_specification__every_file__279_cases_found() -> None:
    assert len(CASES) == EXPECTED_CASES
    assert len({c.file for c in CASES}) == 22


def _payload_value(payload: dict[str, Any]) -> Any:
    from rollout.engine.unleash import convert_variants

    variant = convert_variants([{"name": "x", "weight": 1, "payload": payload}], "expected", [])
    return variant[0].get("value")


def assert_case(case: Case, decision: Decision) -> None:
    """The decision answers the case as an Unleash SDK would."""
    if case.expected_enabled is not None:
        assert decision.enabled is case.expected_enabled, case.id
        return
    expected = case.expected_variant
    assert expected is not None
    assert decision.variant == expected["name"], case.id
    assert decision.enabled is expected["feature_enabled"], case.id
    variant_enabled = decision.enabled and decision.variant != "disabled"
    assert variant_enabled is expected["enabled"], case.id
    if "payload" in expected:
        assert decision.value == _payload_value(expected["payload"]), case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_specification__engine__matches_unleash(case: Case) -> None:
    snapshot = snapshot_from_document(convert(case.state).document())

    decision = evaluate(snapshot, case.toggle, context_from_unleash(case.context))

    assert_case(case, decision)


FILES = load_files()


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "spec"), FILES, ids=[name for name, _ in FILES])
def test_specification__imported_into_the_database__matches_unleash(
    name: str, spec: dict[str, Any]
) -> None:
    from rollout.compiler import compile_environment
    from rollout.services import environment_create
    from rollout.unleash_import import unleash_import

    environment = environment_create(key="conformance")
    unleash_import(document=spec["state"], environment=environment)
    snapshot = snapshot_from_document(compile_environment(environment))

    cases = cases_of(name, spec)
    for case in cases:
        assert_case(case, evaluate(snapshot, case.toggle, context_from_unleash(case.context)))
    assert cases
