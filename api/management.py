"""The management API (DRF; token or session): flags, their state, rollouts. Staff read;
release managers and superusers change (api/permissions.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import openapi_examples as examples
from rollout.audit import Actor
from rollout.edge_models import model_version_get, model_version_register, model_version_serve
from rollout.guardrails import states
from rollout.models import Flag, FlagState, ModelVersion, RolloutPlan, SegmentRollout
from rollout.rollouts import rollout_action, rollout_kill, rollout_plan_create, rollout_plan_get
from rollout.selectors import (
    flag_get,
    flag_list,
    flag_state_get,
    model_versions_of,
    plan_rows_by_key,
    plan_segment_keys,
)
from rollout.services import flag_state_update


def _request(value: Any) -> OpenApiExample:
    return OpenApiExample("request", value=value, request_only=True)


def _answer(value: Any, status: str = "200") -> OpenApiExample:
    return OpenApiExample("answer", value=value, response_only=True, status_codes=[status])


class LengthRequired(APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = "Content-Length: required (no chunked bodies)"
    default_code = "length_required"


class ManagementApi(APIView):
    """Every management endpoint: a body must come with its length."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # WSGI hands Django a body without Content-Length as empty: refuse it rather than
        # act on a request whose fields were dropped.
        meta = request.META
        if meta.get("HTTP_TRANSFER_ENCODING") and not meta.get("CONTENT_LENGTH"):
            raise LengthRequired()
        super().initial(request, *args, **kwargs)


class StrictInput(serializers.Serializer[Any]):
    """An input serializer that refuses fields it does not know (a typo is a 400, not a
    silent no-op)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({name[:80]: ["unknown field"] for name in unknown[:20]})
        return super().to_internal_value(data)


class FlagStateOutput(serializers.Serializer[FlagState]):
    environment = serializers.CharField(source="environment.key")
    enabled = serializers.BooleanField()
    offValue = serializers.JSONField(source="off_value")
    variants = serializers.JSONField()
    dependencies = serializers.JSONField()
    rules = serializers.IntegerField(source="rules.count")
    modelVersion = serializers.CharField(
        source="model_version.version",
        allow_null=True,
        default=None,
        help_text="The on-device model version every client of the environment is served.",
    )


class FlagOutput(serializers.Serializer[Flag]):
    key = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.JSONField()
    archived = serializers.BooleanField()
    states = FlagStateOutput(many=True)


class FlagListApi(ManagementApi):
    @extend_schema(responses=FlagOutput(many=True), examples=[_answer(examples.FLAG)])
    def get(self, request: Request) -> Response:
        """Every flag with its state in each environment."""
        return Response(FlagOutput(flag_list(), many=True).data)  # type: ignore[arg-type]


class FlagStateUpdateApi(ManagementApi):
    class InputSerializer(StrictInput):
        enabled = serializers.BooleanField(required=False)
        offValue = serializers.JSONField(required=False)
        modelVersion = serializers.CharField(
            max_length=40,
            required=False,
            allow_null=True,
            help_text="Serve this registered model version on the on-device rung (null: none).",
        )
        reason = serializers.CharField(
            max_length=2000, required=False, default="", help_text="Why: goes into the audit log."
        )

    @extend_schema(
        request=InputSerializer,
        responses=FlagStateOutput,
        examples=[
            _request(examples.FLAG_STATE_CHANGE),
            OpenApiExample("serve a model version", value=examples.MODEL_SERVE, request_only=True),
            _answer({**examples.FLAG_STATE, "enabled": False}),
        ],
    )
    def patch(self, request: Request, key: str, environment: str) -> Response:
        """Turn a flag on or off (or change its off value) in one environment."""
        state = flag_state_get(flag=key, environment=environment)
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = dict(payload.validated_data)
        reason = fields.pop("reason")
        if "offValue" in fields:
            fields["off_value"] = fields.pop("offValue")
        actor = Actor.of(request.user)
        reason = reason or "changed over the API"
        if "modelVersion" in fields:
            version = fields.pop("modelVersion")
            model = None if version is None else model_version_get(flag=state.flag, version=version)
            state = model_version_serve(state=state, version=model, actor=actor, reason=reason)
        if fields:
            state = flag_state_update(state=state, actor=actor, reason=reason, **fields)
        return Response(FlagStateOutput(state).data)


class DeltaSerializer(StrictInput):
    """A delta from a registered version to this one."""

    # "from" is a Python keyword: the field is declared under its JSON name below.
    url = serializers.CharField(max_length=2000)
    sizeBytes = serializers.IntegerField(min_value=1)
    sha256 = serializers.CharField(max_length=64)


DeltaSerializer._declared_fields["from"] = serializers.CharField(
    max_length=40, help_text="The registered version the delta applies to."
)


@extend_schema_field(
    {
        # Inline rather than a nullable $ref, which OpenAPI 3.0 validators read as not null.
        "type": "object",
        "nullable": True,
        "properties": {
            "from": {"type": "string"},
            "url": {"type": "string"},
            "sizeBytes": {"type": "integer"},
            "sha256": {"type": "string"},
        },
        "required": ["from", "url", "sizeBytes", "sha256"],
    }
)
class DeltaOutput(serializers.JSONField):
    """The version's delta (null: none)."""


class ModelVersionOutput(serializers.Serializer[ModelVersion]):
    flag = serializers.CharField(source="flag.key")
    rung = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    url = serializers.CharField()
    sizeBytes = serializers.IntegerField(source="size_bytes")
    sha256 = serializers.CharField()
    format = serializers.CharField()
    requirements = serializers.JSONField()
    downloadRequirements = serializers.JSONField(source="download_requirements")
    delta = DeltaOutput(source="delta_document", allow_null=True)
    notes = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")
    servedIn = serializers.SerializerMethodField()

    def get_servedIn(self, row: ModelVersion) -> list[str]:
        """The environments that serve this version to every client."""
        return sorted(state.environment.key for state in row.serving_states.all())


# A model version's JSON names -> its model fields (and back, for the messages).
_MODEL_INPUT = {
    "rung": "rung",
    "name": "name",
    "version": "version",
    "url": "url",
    "sizeBytes": "size_bytes",
    "sha256": "sha256",
    "format": "format",
    "requirements": "requirements",
    "downloadRequirements": "download_requirements",
    "notes": "notes",
}
_DELTA_INPUT = {
    "from": "delta_from",
    "url": "delta_url",
    "sizeBytes": "delta_size_bytes",
    "sha256": "delta_sha256",
}
_MODEL_NAMES = {field: name for name, field in _MODEL_INPUT.items()} | {
    field: f"delta.{name}" for name, field in _DELTA_INPUT.items()
}


class ModelVersionInput(StrictInput):
    rung = serializers.CharField(
        max_length=40, required=False, default="", help_text="Default: the on-device rung."
    )
    name = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=40)
    url = serializers.CharField(max_length=2000)
    sizeBytes = serializers.IntegerField(min_value=1)
    sha256 = serializers.CharField(max_length=64)
    format = serializers.ChoiceField(choices=ModelVersion.Format.choices, default="onnx")
    requirements = serializers.JSONField(required=False)
    downloadRequirements = serializers.JSONField(required=False)
    delta = DeltaSerializer(required=False, allow_null=True, default=None)
    notes = serializers.CharField(max_length=2000, required=False, default="")
    reason = serializers.CharField(max_length=2000, required=False, default="")


class ModelVersionListApi(ManagementApi):
    @extend_schema(responses=ModelVersionOutput(many=True), examples=[_answer(examples.MODEL)])
    def get(self, request: Request, key: str) -> Response:
        """The flag's registered on-device model versions, newest first."""
        flag = flag_get(key=key)
        return Response(ModelVersionOutput(model_versions_of(flag), many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        request=ModelVersionInput,
        responses={201: ModelVersionOutput},
        examples=[_request(examples.MODEL_REGISTER), _answer(examples.MODEL_REGISTERED, "201")],
    )
    def post(self, request: Request, key: str) -> Response:
        """Register a model version of the flag's on-device rung. It serves nowhere until an
        environment serves it (`PATCH …/environments/{environment}` with `modelVersion`) or
        a rollout plan ramps it."""
        flag = flag_get(key=key)
        payload = ModelVersionInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        reason = data.pop("reason")
        delta = data.pop("delta") or {}
        fields = {_MODEL_INPUT[name]: value for name, value in data.items()}
        fields.update({_DELTA_INPUT[name]: value for name, value in delta.items()})
        try:
            row = model_version_register(
                flag=flag,
                actor=Actor.of(request.user),
                reason=reason or "registered over the API",
                **fields,
            )
        except DjangoValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            raise ValidationError(
                {_MODEL_NAMES.get(name, "detail"): messages for name, messages in errors.items()}
            ) from None
        return Response(ModelVersionOutput(row).data, status=201)


class SegmentRolloutOutput(serializers.Serializer[SegmentRollout]):
    # Rows come annotated with their segment's current key (rollout.selectors).
    segment = serializers.CharField(source="segment_key")
    state = serializers.CharField()
    stage = serializers.IntegerField()
    percentage = serializers.IntegerField()
    holdReason = serializers.CharField(source="hold_reason")
    stageStartedAt = serializers.DateTimeField(source="stage_started_at", allow_null=True)
    lastVerdict = serializers.JSONField(source="last_verdict")
    lastCheckedAt = serializers.DateTimeField(source="last_checked_at", allow_null=True)


class RolloutPlanOutput(serializers.Serializer[RolloutPlan]):
    flag = serializers.CharField(source="flag_state.flag.key")
    environment = serializers.CharField(source="flag_state.environment.key")
    targetRung = serializers.CharField(source="target_rung")
    targetModelVersion = serializers.CharField(
        source="target_model.version",
        allow_null=True,
        default=None,
        help_text="A model rollout: the version the treatment arm runs (null: a rung rollout).",
    )
    stages = serializers.JSONField()
    guardrails = serializers.JSONField()
    alpha = serializers.FloatField()
    burnInClients = serializers.IntegerField(source="burn_in_clients")
    noDataHours = serializers.FloatField(source="no_data_hours")
    includedSegments = serializers.SerializerMethodField()
    excludedSegments = serializers.SerializerMethodField()
    segments = serializers.SerializerMethodField()

    # Stored by identity; answered as the keys the segments have now.
    def get_includedSegments(self, plan: RolloutPlan) -> list[str]:
        return plan_segment_keys(plan.included_segments)

    def get_excludedSegments(self, plan: RolloutPlan) -> list[str]:
        return plan_segment_keys(plan.excluded_segments)

    @extend_schema_field(SegmentRolloutOutput(many=True))
    def get_segments(self, plan: RolloutPlan) -> list[dict[str, Any]]:
        rows = plan_rows_by_key(plan)
        return list(SegmentRolloutOutput(rows, many=True).data)  # type: ignore[arg-type]


class ReasonInput(StrictInput):
    reason = serializers.CharField(max_length=2000, help_text="Why: it goes into the audit log.")


class RolloutApi(ManagementApi):
    class InputSerializer(StrictInput):
        reason = serializers.CharField(max_length=2000, required=False, default="new rollout")
        targetRung = serializers.CharField(max_length=40, required=False, default="")
        targetModelVersion = serializers.CharField(
            max_length=40,
            required=False,
            default="",
            help_text="Ramp this registered model version (treatment) against the one the "
            "environment serves (control) on its rung, instead of a rung.",
        )
        stages = serializers.JSONField(required=False)
        guardrails = serializers.JSONField(required=False)
        # Ranges are checked by the plan itself (rollout.guardrails.plan.PLAN_RANGES), for the
        # API and the admin alike.
        alpha = serializers.FloatField(required=False)
        burnInClients = serializers.IntegerField(required=False)
        noDataHours = serializers.FloatField(required=False)
        includedSegments = serializers.JSONField(required=False)
        excludedSegments = serializers.JSONField(required=False)
        start = serializers.BooleanField(required=False, default=True)

    @extend_schema(responses=RolloutPlanOutput, examples=[_answer(examples.ROLLOUT)])
    def get(self, request: Request, flag: str, environment: str) -> Response:
        """A flag's rollout in one environment: its plan and every segment's state."""
        plan = rollout_plan_get(flag=flag, environment=environment)
        return Response(RolloutPlanOutput(plan).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: RolloutPlanOutput},
        examples=[_request(examples.ROLLOUT_START), _answer(examples.ROLLOUT, "201")],
    )
    def post(self, request: Request, flag: str, environment: str) -> Response:
        """Start a rollout of an edge feature in one environment (default plan unless given)."""
        state = flag_state_get(flag=flag, environment=environment)
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        settings = {
            name: data[key]
            for key, name in (
                ("alpha", "alpha"),
                ("burnInClients", "burn_in_clients"),
                ("noDataHours", "no_data_hours"),
            )
            if key in data
        }
        model = None
        if data["targetModelVersion"]:
            model = model_version_get(
                flag=state.flag, version=data["targetModelVersion"], field="targetModelVersion"
            )
        try:
            plan = rollout_plan_create(
                state=state,
                actor=Actor.of(request.user),
                reason=data["reason"],
                target_rung=data["targetRung"],
                target_model=model,
                stages=data.get("stages"),
                guardrails=data.get("guardrails"),
                included_segments=data.get("includedSegments"),
                excluded_segments=data.get("excludedSegments"),
                start=data["start"],
                **settings,
            )
        except DjangoValidationError as exc:
            # The model names its own fields; the API names its JSON ones.
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            raise ValidationError(
                {_PLAN_INPUT_NAMES.get(name, name): messages for name, messages in errors.items()}
            ) from None
        return Response(RolloutPlanOutput(plan).data, status=201)


_PLAN_INPUT_NAMES = {
    "target_rung": "targetRung",
    "target_model": "targetModelVersion",
    "burn_in_clients": "burnInClients",
    "no_data_hours": "noDataHours",
    "included_segments": "includedSegments",
    "excluded_segments": "excludedSegments",
    "__all__": "detail",
}


class SegmentActionApi(ManagementApi):
    @extend_schema(
        request=ReasonInput,
        responses=SegmentRolloutOutput,
        examples=[_request(examples.REASON), _answer(examples.ROLLED_BACK)],
        parameters=[
            OpenApiParameter(
                "action", location=OpenApiParameter.PATH, enum=list(states.MANUAL_ACTIONS)
            )
        ],
    )
    def post(
        self, request: Request, flag: str, environment: str, segment: str, action: str
    ) -> Response:
        """Roll back, pause, resume or advance one segment (a reason is required)."""
        payload = ReasonInput(data=request.data)
        payload.is_valid(raise_exception=True)
        row = rollout_action(
            flag=flag,
            environment=environment,
            segment=segment,
            action=action,
            actor=Actor.of(request.user),
            reason=payload.validated_data["reason"],
        )
        return Response(SegmentRolloutOutput(row).data)


class KillApi(ManagementApi):
    @extend_schema(
        request=ReasonInput,
        responses=SegmentRolloutOutput(many=True),
        # drf-spectacular lists the example of a list answer itself.
        examples=[_request(examples.REASON), _answer(examples.ROLLED_BACK)],
    )
    def post(self, request: Request, flag: str, environment: str) -> Response:
        """The kill switch: roll back every segment of the flag's rollout (answers with the
        segments it rolled back)."""
        payload = ReasonInput(data=request.data)
        payload.is_valid(raise_exception=True)
        rows = rollout_kill(
            flag=flag,
            environment=environment,
            actor=Actor.of(request.user),
            reason=payload.validated_data["reason"],
        )
        return Response(SegmentRolloutOutput(rows, many=True).data)  # type: ignore[arg-type]
