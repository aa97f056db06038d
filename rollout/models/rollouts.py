"""Rollout plans (one per flag and environment) and each segment's place in them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from rollout.guardrails.plan import (
    DEFAULT_ALPHA,
    PlanInvalid,
    PlanSpec,
    check_segment_identities,
    default_guardrails_json,
    default_stages_json,
    parse_plan,
)
from rollout.guardrails.states import HOLD_REASONS, STATES, Position
from rollout.models.fields import TEXT_INPUT, StrictJSONField, refused_json
from rollout.models.flags import FlagState


def _everything() -> list[str]:
    return ["*"]


# A plan setting's name in PlanInvalid's messages (the API's JSON) -> its model field.
_PLAN_FIELDS = {
    "stages": "stages",
    "guardrails": "guardrails",
    "alpha": "alpha",
    "burnInClients": "burn_in_clients",
    "noDataHours": "no_data_hours",
}


class RolloutPlan(models.Model):
    """How an edge feature's target rung ramps through the segments of one environment."""

    flag_state = models.OneToOneField(
        FlagState, on_delete=models.CASCADE, related_name="rollout_plan"
    )
    target_rung = models.CharField(
        max_length=40,
        blank=True,
        validators=[TEXT_INPUT],
        help_text="The rung being rolled out (default: the best rung).",
    )
    # A model rollout: the treatment arm gets this version on its rung, the control arm the
    # version the environment serves (rung availability is left as it is). None: the plan
    # ramps the target rung itself.
    target_model = models.ForeignKey(
        "rollout.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rollout_plans",
        help_text="Ramp this on-device model version instead of a rung.",
    )
    stages = StrictJSONField(
        default=default_stages_json,
        help_text='[{"percentage": 1, "minDwellHours": 2, "minTreatmentClients": 30, '
        '"maxDurationHours": 72}, …] with rising percentages; entering 100 % completes.',
    )
    guardrails = StrictJSONField(
        default=default_guardrails_json,
        help_text='[{"metric": "failures|latency|rating|energy", "tau": 0.01, "margin": 0, '
        '"relative": false}, …]',
    )
    alpha = models.FloatField(
        default=DEFAULT_ALPHA, help_text="False-rollback budget per segment, split over metrics."
    )
    burn_in_clients = models.PositiveIntegerField(
        default=50, help_text="Mean metrics are tested after this many clients per arm."
    )
    no_data_hours = models.FloatField(default=24.0, help_text="Hold after this long without data.")
    # Capability segments by identity (a rename leaves the plan alone), "*" for every one;
    # people read and write them as keys (rollout.rollouts.plan_segments_from_keys).
    included_segments = StrictJSONField(
        default=_everything, blank=True, help_text='Segment keys, or ["*"] for every segment.'
    )
    excluded_segments = StrictJSONField(default=list, blank=True, help_text="Segment keys.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["flag_state__flag__key", "flag_state__environment__key"]

    def __str__(self) -> str:
        return f"rollout of {self.flag_state}"

    def spec(self) -> PlanSpec:
        """The plan as the pure controller reads it (raises PlanInvalid)."""
        return parse_plan(
            self.stages,
            self.guardrails,
            alpha=self.alpha,
            burn_in_clients=self.burn_in_clients,
            no_data_hours=self.no_data_hours,
        )

    def stage_percentages(self) -> tuple[int, ...]:
        return tuple(int(stage["percentage"]) for stage in self.stages)

    def covers(self, identity: int) -> bool:
        """Whether the segment with this identity takes part in this rollout."""
        if identity in (self.excluded_segments or []):
            return False
        included = self.included_segments or []
        return "*" in included or identity in included

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            self.spec()
        except PlanInvalid as exc:
            field = str(exc).partition(":")[0].split("[")[0].split(".")[0]
            errors.setdefault(_PLAN_FIELDS.get(field, "__all__"), []).append(str(exc))
        for name, json_name in (
            ("included_segments", "includedSegments"),
            ("excluded_segments", "excludedSegments"),
        ):
            value = getattr(self, name)
            if refused_json(value):
                continue  # the field's validator names the problem
            try:
                check_segment_identities(value, json_name)
            except PlanInvalid as exc:
                errors.setdefault(name, []).append(str(exc))
        if self.flag_state_id:
            keys = list(self.flag_state.flag.rungs.values_list("key", flat=True))
            if not keys:
                errors.setdefault("flag_state", []).append(
                    f"{self.flag_state.flag.key} has no ladder: only edge features ramp"
                )
            elif self.target_rung and self.target_rung not in keys:
                errors.setdefault("target_rung", []).append(
                    f"target_rung: the flag has no rung {self.target_rung!r} ({', '.join(keys)})"
                )
            model = self.target_model
            if model is not None:
                if model.flag_id != self.flag_state.flag_id:
                    errors.setdefault("target_model", []).append(
                        f"target_model: {model} is a model of another flag"
                    )
                elif model.pk == self.flag_state.model_version_id:
                    errors.setdefault("target_model", []).append(
                        f"target_model: {model} is already served in "
                        f"{self.flag_state.environment.key}"
                    )
                if self.target_rung and self.target_rung != model.rung:
                    errors.setdefault("target_rung", []).append(
                        f"target_rung: {model} runs on {model.rung!r}, not {self.target_rung!r}"
                    )
        if errors:
            raise ValidationError(errors)


class SegmentRollout(models.Model):
    """One capability segment's place in a rollout plan (see rollout.guardrails.states)."""

    class State(models.TextChoices):
        PENDING = "pending"
        RAMPING = "ramping"
        PAUSED = "paused"
        HELD = "held"
        COMPLETE = "complete"
        ROLLED_BACK = "rolled_back", "rolled back"

    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="segments")
    # By identity, not key: a rename changes the key rules and clients see, not the rollout.
    segment_identity = models.PositiveIntegerField(
        help_text="The capability segment's identity (0: the save-data segment)."
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    stage = models.PositiveSmallIntegerField(default=0)
    hold_reason = models.CharField(
        max_length=10, blank=True, choices=[(r, r.replace("_", " ")) for r in HOLD_REASONS]
    )
    stage_started_at = models.DateTimeField(null=True, blank=True)
    # Each metric's log e-value from finished stages: evidence of successive stages multiplies.
    carried_evidence = models.JSONField(default=dict, blank=True)
    # The frozen pre-rollout p95 of inference time (ms) the latency metric compares against.
    latency_p95_ms = models.FloatField(null=True, blank=True)
    last_verdict = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The segment's current key, where rollout.selectors.with_segment_keys annotated it.
    segment_key: str

    class Meta:
        ordering = ["plan", "segment_identity"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "segment_identity"], name="one_rollout_per_segment"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=STATES), name="segment_rollout_state_known"
            ),
        ]
        indexes = [models.Index(fields=["state"], name="segment_rollout_state")]

    def __str__(self) -> str:
        key = getattr(self, "segment_key", None) or f"segment {self.segment_identity}"
        return f"{self.plan.flag_state} / {key}"

    @property
    def position(self) -> Position:
        return Position(self.state, self.stage, self.hold_reason)

    @property
    def percentage(self) -> int:
        return self.position.percentage(self.plan.stage_percentages())

    def stage_age_hours(self, now: datetime) -> float:
        if self.stage_started_at is None:
            return 0.0
        return max(0.0, (now - self.stage_started_at).total_seconds() / 3600.0)

    def snapshot_entry(self) -> dict[str, Any]:
        """What the engine needs to bucket the segment's clients."""
        return {"state": self.state, "stage": self.stage, "percentage": self.percentage}
