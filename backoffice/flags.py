"""Flags, ladders, states, rules, rule segments, snapshots, rollouts and the audit log in the
admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from backoffice.base import AuditedAdmin, RoleChecked
from backoffice.ladder_preview import ladder_reach
from ops.errors import DomainError
from ops.json_input import JsonInputError
from rollout.audit import Actor
from rollout.edge_models import model_version_serve
from rollout.models import (
    AuditEntry,
    Flag,
    FlagState,
    ModelVersion,
    RolloutPlan,
    Rung,
    Segment,
    SegmentRollout,
    SnapshotVersion,
    TargetingRule,
)
from rollout.models.fields import StrictJSONFormField
from rollout.rollouts import (
    RolloutError,
    plan_segments_from_keys,
    rollout_kill,
    rollout_plan_create,
    segment_transition,
)
from rollout.selectors import plan_segment_keys, segment_key_of, with_segment_keys
from rollout.services import ladder_problems


class FlagStateInline(RoleChecked, admin.StackedInline[FlagState, Flag]):
    model = FlagState
    extra = 0
    fields = [
        "environment",
        "enabled",
        "off_value",
        "variants",
        "dependencies",
    ]
    show_change_link = True


class RungFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Whole-ladder rules checked across the inline rows (last rung without requirements…)."""

    def clean(self) -> None:
        super().clean()
        rows = [
            form.cleaned_data
            for form in sorted(self.forms, key=lambda f: f.cleaned_data.get("order", 0))
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not rows:
            return
        flag = self.instance
        problems = ladder_problems(
            [{"key": r["key"], "requirements": r.get("requirements")} for r in rows],
            baseline=flag.baseline_rung,
            safe=flag.safe_rung,
        )
        if problems:
            raise ValidationError(problems)


class RungInline(RoleChecked, admin.StackedInline[Rung, Flag]):
    model = Rung
    formset = RungFormSet
    extra = 0
    fields = ["order", "key", "runs_on", "value", "ui_state", "requirements"]


@admin.register(Flag)
class FlagAdmin(AuditedAdmin):
    list_display = ["key", "kind", "description", "archived", "updated_at"]
    list_filter = ["kind", "archived", "states__environment", "states__enabled"]
    search_fields = ["key", "description"]
    fields = [
        "key",
        "kind",
        "description",
        "tags",
        "archived",
        "baseline_rung",
        "safe_rung",
        "estimate_confidence",
        "freshness_limit_hours",
        "cloud_cost_per_1000",
        "ladder_preview",
    ]
    readonly_fields = ["ladder_preview"]
    inlines = [RungInline, FlagStateInline]

    @admin.display(description="ladder reach (current population)")
    def ladder_preview(self, obj: Flag) -> str:
        reach = ladder_reach(obj) if obj.pk else {}
        if not reach:
            return "No ladder (or no profiles yet)."
        return format_html_join(
            "", "<div>{}: <strong>{}</strong></div>", ((k, f"{v:.1%}") for k, v in reach.items())
        )


class TargetingRuleInline(RoleChecked, admin.StackedInline[TargetingRule, FlagState]):
    model = TargetingRule
    extra = 0
    fields = [
        "order",
        "description",
        "strategy",
        "rollout_percentage",
        "stickiness",
        "group_id",
        "constraints",
        "segments",
        "variants",
        "parameters",
    ]
    filter_horizontal = ["segments"]


@admin.register(FlagState)
class FlagStateAdmin(AuditedAdmin):
    list_display = ["flag", "environment", "enabled", "model_version", "updated_at"]
    list_filter = ["environment", "enabled", "flag__kind"]
    search_fields = ["flag__key"]
    list_select_related = ["flag", "environment", "model_version"]
    inlines = [TargetingRuleInline]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "model_version":
            # Only the versions of this state's flag (resolve_match: the state being edited).
            match = request.resolver_match
            state_id = (match.kwargs.get("object_id") if match else None) or 0
            kwargs["queryset"] = ModelVersion.objects.filter(flag__states__pk=state_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change and "model_version" in form.changed_data:
            # The served model version has its own audited service (as over the API).
            chosen = obj.model_version
            obj.model_version = FlagState.objects.get(pk=obj.pk).model_version
            model_version_serve(state=obj, version=chosen, actor=Actor.of(request.user))
            form.changed_data.remove("model_version")
        super().save_model(request, obj, form, change)


@admin.register(Segment)
class SegmentAdmin(AuditedAdmin):
    list_display = ["key", "description", "updated_at"]
    search_fields = ["key", "description"]


@admin.register(SnapshotVersion)
class SnapshotVersionAdmin(AuditedAdmin):
    list_display = ["environment", "version", "reason", "created_at"]
    list_filter = ["environment"]
    readonly_fields = ["environment", "version", "etag", "reason", "created_at", "document"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _segment_action(action: str, description: str) -> Any:
    """An admin action on segment rollouts that asks for a confirmation and a reason."""

    def run(
        modeladmin: SegmentRolloutAdmin, request: HttpRequest, queryset: QuerySet[SegmentRollout]
    ) -> TemplateResponse | None:
        rows = list(
            queryset.select_related("plan__flag_state__flag", "plan__flag_state__environment")
        )
        reason = request.POST.get("reason", "").strip()
        if "confirm" in request.POST and reason:
            done, failed = 0, []
            for row in rows:
                try:
                    segment_transition(
                        row=row, action=action, actor=Actor.of(request.user), reason=reason
                    )
                    done += 1
                except (RolloutError, JsonInputError) as exc:
                    failed.append(f"{segment_key_of(row)}: {exc.field}: {exc.message}")
            modeladmin.message_user(request, f"{description}: {done} segment(s).")
            for problem in failed:
                modeladmin.message_user(request, problem, level=messages.ERROR)
            return None
        return TemplateResponse(
            request,
            "admin/rollout/segmentrollout/confirm_action.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{description}?",
                "action": run.__name__,
                "description": description,
                "rows": rows,
                "missing_reason": "confirm" in request.POST,
                "opts": modeladmin.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    run.__name__ = action
    # Viewers (view permission only) neither see nor can post the actions.
    return admin.action(description=f"{description} (asks for a reason)", permissions=["change"])(
        run
    )


class SegmentKeyShown:
    """Rows of segment rollouts show their segment's current key (one subquery, no query
    per row); the row itself holds the segment's identity."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[SegmentRollout]:
        return with_segment_keys(super().get_queryset(request))  # type: ignore[misc]

    @admin.display(description="segment", ordering="segment_key")
    def segment(self, obj: SegmentRollout) -> str:
        return segment_key_of(obj)


class SegmentRolloutInline(
    SegmentKeyShown, RoleChecked, admin.TabularInline[SegmentRollout, RolloutPlan]
):
    model = SegmentRollout
    extra = 0
    can_delete = False
    fields = ["segment", "state", "stage", "percentage", "hold_reason", "stage_started_at"]
    readonly_fields = ["segment", "state", "stage", "percentage", "hold_reason", "stage_started_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SegmentKeysField(StrictJSONFormField):
    """A plan's segment list shown and typed as keys, stored as identities (a rename leaves
    the plan alone)."""

    def __init__(self, *args: Any, where: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.where = where

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):  # stored identities, or the keys a person typed
            value = plan_segment_keys(value)
        return super().prepare_value(value)

    def clean(self, value: Any) -> Any:
        keys = super().clean(value)
        try:
            return plan_segments_from_keys(keys if keys is not None else [], self.where)
        except DomainError as exc:
            raise ValidationError(exc.message) from None


class RolloutPlanForm(forms.ModelForm):  # type: ignore[type-arg]
    included_segments = SegmentKeysField(
        where="includedSegments",
        required=False,
        help_text='Segment keys, or ["*"] for every segment.',
    )
    excluded_segments = SegmentKeysField(
        where="excludedSegments", required=False, help_text="Segment keys."
    )

    class Meta:
        model = RolloutPlan
        fields = "__all__"  # noqa: DJ007  # the admin shows every field, as without this form


@admin.register(RolloutPlan)
class RolloutPlanAdmin(AuditedAdmin):
    form = RolloutPlanForm
    list_display = ["flag_state", "target_rung", "target_model", "segment_states", "updated_at"]
    list_filter = ["flag_state__environment"]
    search_fields = ["flag_state__flag__key"]
    list_select_related = ["flag_state__flag", "flag_state__environment", "target_model"]
    inlines = [SegmentRolloutInline]
    actions = ["kill"]

    @admin.display(description="segments")
    def segment_states(self, obj: RolloutPlan) -> str:
        counts: dict[str, int] = {}
        for state in obj.segments.values_list("state", flat=True):
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items()))

    def save_model(self, request: HttpRequest, obj: RolloutPlan, form: Any, change: bool) -> None:
        if change:  # a plan's settings: the audited row save
            super().save_model(request, obj, form, change)
            return
        # A new plan: the API's service (its checks, its audit entry, a row per segment),
        # with the segments waiting until someone starts them.
        created = rollout_plan_create(
            state=obj.flag_state,
            actor=Actor.of(request.user),
            reason="created in the admin",
            target_rung=obj.target_rung,
            target_model=obj.target_model,
            stages=obj.stages,
            guardrails=obj.guardrails,
            included_segments=plan_segment_keys(obj.included_segments),
            excluded_segments=plan_segment_keys(obj.excluded_segments),
            start=False,
            alpha=obj.alpha,
            burn_in_clients=obj.burn_in_clients,
            no_data_hours=obj.no_data_hours,
        )
        obj.pk = created.pk

    @admin.action(
        description="Kill switch: roll back every segment (asks for a reason)",
        permissions=["change"],
    )
    def kill(
        self, request: HttpRequest, queryset: QuerySet[RolloutPlan]
    ) -> TemplateResponse | None:
        plans = list(queryset.select_related("flag_state__flag", "flag_state__environment"))
        reason = request.POST.get("reason", "").strip()
        if "confirm" in request.POST and reason:
            for plan in plans:
                try:
                    rows = rollout_kill(
                        flag=plan.flag_state.flag.key,
                        environment=plan.flag_state.environment.key,
                        actor=Actor.of(request.user),
                        reason=reason,
                    )
                except RolloutError as exc:
                    self.message_user(
                        request, f"{plan}: {exc.field}: {exc.message}", level=messages.ERROR
                    )
                    continue
                self.message_user(request, f"{plan}: rolled back {len(rows)} segment(s).")
            return None
        return TemplateResponse(
            request,
            "admin/rollout/segmentrollout/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "title": "Roll back every segment?",
                "action": "kill",
                "description": "Kill switch: roll back every segment",
                "rows": plans,
                "missing_reason": "confirm" in request.POST,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(SegmentRollout)
class SegmentRolloutAdmin(SegmentKeyShown, AuditedAdmin):
    list_display = [
        "plan",
        "segment",
        "state",
        "stage",
        "percentage",
        "hold_reason",
        "stage_started_at",
        "last_checked_at",
    ]
    list_filter = ["state", "hold_reason", "plan__flag_state__environment"]
    search_fields = ["segment_key", "plan__flag_state__flag__key"]
    list_select_related = ["plan__flag_state__flag", "plan__flag_state__environment"]
    readonly_fields = [
        "plan",
        "segment",
        "state",
        "stage",
        "hold_reason",
        "stage_started_at",
        "carried_evidence",
        "latency_p95_ms",
        "last_verdict",
        "last_checked_at",
    ]
    actions = [
        _segment_action("rollback", "Roll back"),
        _segment_action("pause", "Pause"),
        _segment_action("resume", "Resume"),
        _segment_action("advance", "Advance to the next stage"),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditedAdmin):
    list_display = ["at", "actor_name", "action", "flag", "environment", "segment", "reason"]
    list_filter = ["action", "environment", "actor_name"]
    search_fields = ["flag", "segment", "reason", "actor_name"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
