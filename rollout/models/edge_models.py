"""On-device model versions: the artifacts an edge feature's on-device rung runs.

A version is registered once (admin, `POST /api/v1/flags/{key}/models`) and never edited:
a different artifact is a different version. Which version an environment serves is its
flag state's `model_version`; a rollout plan may ramp another one segment by segment.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator, URLValidator
from django.db import models

from capability_probe.vocabulary import BY_WIRE
from rollout.engine.document import validate_constraints
from rollout.models.fields import TEXT_INPUT, StrictJSONField, refused_json
from rollout.models.flags import Flag, Rung

SHA256_VALIDATOR = RegexValidator(r"^[0-9a-f]{64}$", "64 lower-case hexadecimal digits.")
VERSION_VALIDATOR = RegexValidator(
    r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$",
    "1 to 40 letters, digits, '.', '+', '_' or '-' (e.g. 3.0.0), starting with a letter or digit.",
)
MODEL_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,99}$",
    "1 to 100 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.",
)
# Artifacts are fetched by browsers and apps: http(s) only, never file: or data:.
ARTIFACT_URL_VALIDATOR = URLValidator(schemes=["https", "http"])
MAX_ARTIFACT_BYTES = 64 * 1024**3  # 64 GiB: beyond any on-device model


class ModelVersion(models.Model):
    """One version of an on-device model of a flag, runnable on one of its device rungs."""

    class Format(models.TextChoices):
        ONNX = "onnx", "ONNX (onnxruntime-web, ONNX Runtime Mobile)"
        TFLITE = "tflite", "TensorFlow Lite / LiteRT"
        COREML = "coreml", "Core ML"
        GGUF = "gguf", "GGUF (llama.cpp)"
        MLC = "mlc", "MLC / WebLLM"
        SAFETENSORS = "safetensors", "safetensors"
        OTHER = "other", "other"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="model_versions")
    rung = models.SlugField(
        max_length=40, help_text="The on-device rung that runs this model (e.g. edge)."
    )
    name = models.CharField(max_length=100, validators=[MODEL_NAME_VALIDATOR])
    version = models.CharField(max_length=40, validators=[VERSION_VALIDATOR])
    url = models.CharField(
        max_length=2000,
        validators=[ARTIFACT_URL_VALIDATOR, TEXT_INPUT],
        help_text="Where clients download the full artifact (https).",
    )
    size_bytes = models.PositiveBigIntegerField(
        validators=[MinValueValidator(1)], help_text="The full artifact's size in bytes."
    )
    sha256 = models.CharField(max_length=64, validators=[SHA256_VALIDATOR])
    format = models.CharField(max_length=12, choices=Format.choices, default=Format.ONNX)
    requirements = StrictJSONField(
        default=list,
        blank=True,
        help_text="What running it needs, added to the rung's requirements: "
        '[{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}]',
    )
    download_requirements = StrictJSONField(
        default=list,
        blank=True,
        help_text="What downloading it needs, for clients that do not hold it yet: "
        '[{"contextName": "metered", "operator": "IN", "values": ["true"], "inverted": true}, '
        '{"contextName": "storageFreeGb", "operator": "NUM_GTE", "value": "1"}]',
    )
    delta_from = models.CharField(
        max_length=40,
        blank=True,
        help_text="A registered version this one has a delta from (empty: no delta).",
    )
    delta_url = models.CharField(
        max_length=2000, blank=True, validators=[ARTIFACT_URL_VALIDATOR, TEXT_INPUT]
    )
    delta_size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    delta_sha256 = models.CharField(max_length=64, blank=True, validators=[SHA256_VALIDATOR])
    notes = models.TextField(blank=True, validators=[TEXT_INPUT])
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["flag", "-pk"]  # newest first (creation order; times can tie)
        constraints = [
            models.UniqueConstraint(fields=["flag", "version"], name="one_model_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for name in ("requirements", "download_requirements"):
            value = getattr(self, name)
            if refused_json(value):
                continue
            for problem in validate_constraints(value, name):
                errors.setdefault(name, []).append(problem)
        if isinstance(self.download_requirements, list):
            for index, item in enumerate(self.download_requirements):
                signal = item.get("contextName") if isinstance(item, dict) else None
                if signal not in BY_WIRE:
                    errors.setdefault("download_requirements", []).append(
                        f"download_requirements[{index}].contextName: {str(signal)[:60]!r} is "
                        "not a capability signal"
                    )
        if self.size_bytes and self.size_bytes > MAX_ARTIFACT_BYTES:
            errors.setdefault("size_bytes", []).append(f"at most {MAX_ARTIFACT_BYTES} bytes")
        self._clean_delta(errors)
        if self.flag_id and self.rung:
            rung = Rung.objects.filter(flag_id=self.flag_id, key=self.rung).first()
            if rung is None:
                errors.setdefault("rung", []).append(f"rung: the flag has no rung {self.rung!r}")
            elif rung.runs_on != Rung.RunsOn.DEVICE:
                errors.setdefault("rung", []).append(
                    f"rung: {self.rung!r} runs on {rung.runs_on}, not on the device"
                )
        if errors:
            raise ValidationError(errors)

    def _clean_delta(self, errors: dict[str, list[str]]) -> None:
        parts: dict[str, Any] = {
            "delta_url": self.delta_url,
            "delta_size_bytes": self.delta_size_bytes,
            "delta_sha256": self.delta_sha256,
        }
        if not self.delta_from:
            for name, value in parts.items():
                if value:
                    errors.setdefault(name, []).append(f"{name}: only with delta_from")
            return
        for name, value in parts.items():
            if not value:
                errors.setdefault(name, []).append(f"{name}: required with delta_from")
        if self.delta_from == self.version:
            errors.setdefault("delta_from", []).append("delta_from: a delta from another version")
        elif (
            self.flag_id
            and not ModelVersion.objects.filter(flag_id=self.flag_id, version=self.delta_from)
            .exclude(pk=self.pk)
            .exists()
        ):
            errors.setdefault("delta_from", []).append(
                f"delta_from: the flag has no model version {self.delta_from[:40]!r}"
            )

    @property
    def delta_document(self) -> dict[str, Any] | None:
        """The delta as documents and the API name it (None: no delta)."""
        if not self.delta_from:
            return None
        return {
            "from": self.delta_from,
            "url": self.delta_url,
            "sizeBytes": self.delta_size_bytes,
            "sha256": self.delta_sha256,
        }

    def document(self) -> dict[str, Any]:
        """The model as the snapshot's ladder rung carries it (rollout/engine/edge_models.py)."""
        raw: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "url": self.url,
            "sizeBytes": self.size_bytes,
            "sha256": self.sha256,
            "format": self.format,
            "requirements": self.requirements or [],
            "downloadRequirements": self.download_requirements or [],
        }
        if self.delta_from:
            raw["delta"] = self.delta_document
        return raw
