"""The pure-Python evaluation core: no Django, only the standard library, mmh3 and re2.

Definitions (model.py) are compiled once by `build_snapshot` (or `snapshot_from_document`
from the published JSON) and evaluated with `evaluate` / `evaluate_all`.
"""

from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import evaluate, evaluate_all
from rollout.engine.model import (
    ConstraintDef,
    DependencyDef,
    FlagDef,
    RuleDef,
    SegmentDef,
    VariantDef,
    rollout_rule,
)
from rollout.engine.snapshot import build_snapshot
from rollout.engine.types import Decision, Snapshot
from rollout.engine.validation import validate_constraint, validate_flag, validate_segment

__all__ = [
    "ConstraintDef",
    "Decision",
    "DependencyDef",
    "FlagDef",
    "RuleDef",
    "SegmentDef",
    "Snapshot",
    "VariantDef",
    "build_snapshot",
    "evaluate",
    "evaluate_all",
    "rollout_rule",
    "snapshot_from_document",
    "validate_constraint",
    "validate_flag",
    "validate_segment",
]
