"""The management API (DRF, staff only: token or session): flags and their state."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rollout.models import Flag, FlagState
from rollout.selectors import flag_list
from rollout.services import flag_state_update


class FlagStateOutput(serializers.Serializer[FlagState]):
    environment = serializers.CharField(source="environment.key")
    enabled = serializers.BooleanField()
    offValue = serializers.JSONField(source="off_value")
    variants = serializers.JSONField()
    dependencies = serializers.JSONField()
    rules = serializers.IntegerField(source="rules.count")


class FlagOutput(serializers.Serializer[Flag]):
    key = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.JSONField()
    archived = serializers.BooleanField()
    states = FlagStateOutput(many=True)


class FlagListApi(APIView):
    @extend_schema(responses=FlagOutput(many=True))
    def get(self, request: Request) -> Response:
        """Every flag with its state in each environment."""
        return Response(FlagOutput(flag_list(), many=True).data)  # type: ignore[arg-type]


class FlagStateUpdateApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        enabled = serializers.BooleanField(required=False)
        offValue = serializers.JSONField(required=False)

    @extend_schema(request=InputSerializer, responses=FlagStateOutput)
    def patch(self, request: Request, key: str, environment: str) -> Response:
        """Turn a flag on or off (or change its off value) in one environment."""
        state = get_object_or_404(
            FlagState.objects.select_related("flag", "environment"),
            flag__key=key,
            environment__key=environment,
        )
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = dict(payload.validated_data)
        if "offValue" in fields:
            fields["off_value"] = fields.pop("offValue")
        state = flag_state_update(state=state, **fields)
        return Response(FlagStateOutput(state).data)
