"""Which share of the current population each rung of a ladder would reach."""

from __future__ import annotations

from collections import Counter

from capability_probe.models import ClientProfile
from rollout.engine.capability import CapabilityModel
from rollout.engine.context import Context
from rollout.engine.estimates import effective_network
from rollout.engine.ladder import climb, compile_ladder, is_profiled
from rollout.models import Flag
from segments.selectors import model_current

SAMPLE = 5000


def ladder_reach(flag: Flag, sample: int = SAMPLE) -> dict[str, float]:
    """Rung key -> share of the most recent `sample` profiles that would get it (best rung met,
    every segment included, estimates read as decisions read them); "unprofiled" for profiles
    without any capability signal."""
    rungs = list(flag.rungs.order_by("order", "pk"))
    if not rungs:
        return {}
    ladder = compile_ladder(
        {
            "rungs": [
                {
                    "key": r.key,
                    "requirements": r.requirements,
                    "runsOn": r.runs_on,
                    "uiState": r.ui_state,
                }
                for r in rungs
            ],
            "baseline": flag.baseline_rung,
            "safe": flag.safe_rung,
            "minConfidence": flag.estimate_confidence,
        }
    )
    current = model_current()
    model = CapabilityModel(current.artifact) if current is not None else None
    counts: Counter[str] = Counter()
    profiles = ClientProfile.objects.order_by("-received_at")[:sample]
    for profile in profiles:
        # As decisions read it: the measured network, and estimates of what is not reported.
        attributes = profile.attributes()
        ctx = (
            Context(*model.completed(attributes))
            if model is not None
            else Context(effective_network(attributes))
        )
        if not is_profiled(ctx):
            counts["unprofiled"] += 1
            continue
        counts[climb(ladder, ctx, None, in_rollout=True).rung.key] += 1
    total = sum(counts.values()) or 1
    return {key: counts[key] / total for key in [*(r.key for r in rungs), "unprofiled"]}
