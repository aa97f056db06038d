"""Flags, environments, API keys, targeting rules, rule segments and snapshot versions.

Definitions that the engine evaluates (constraints, variants, strategy parameters) are kept
in the engine's own JSON shapes and validated on save by the engine's validators, so what is
stored is always something the engine can compile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from rollout.engine.document import validate_constraints, validate_rule, validate_variants
from rollout.engine.ladder import DEFAULT_MIN_CONFIDENCE
from rollout.models.fields import TEXT_INPUT, StrictJSONField, refused_json
from rollout.schemas import ui_state_problems

KIND_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "string": (str,),
    "number": (int, float),
    "object": (dict,),
}


def _raise_field_errors(errors: Iterable[str]) -> None:
    """Raise the engine's "field: message" problems as a Django ValidationError by field."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        name = error.partition(": ")[0]
        by_field.setdefault(name.split(".")[0].split("[")[0], []).append(error)
    if by_field:
        raise ValidationError(by_field)


FLAG_KEY_VALIDATOR = RegexValidator(
    r"^[^\s]{1,200}$", "A flag key is 1 to 200 characters without spaces."
)
SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,62}$",
    "Use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)

# A browser origin as browsers send it: scheme, host and an optional port, nothing else.
ORIGIN = re.compile(r"^https?://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")
MAX_ORIGINS = 100


def origin_lines(text: str) -> list[str]:
    """The non-empty lines of an allowed-origins text, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def validate_origins(text: str) -> None:
    """Every line an origin (`https://app.example.com`, `http://localhost:3000`)."""
    lines = origin_lines(text)
    if len(lines) > MAX_ORIGINS:
        raise ValidationError(f"at most {MAX_ORIGINS} origins")
    bad = [line for line in lines if not ORIGIN.match(line)]
    if bad:
        raise ValidationError(
            f"not an origin: {bad[0][:100]!r} (scheme://host[:port] in lower case, no path, "
            "one per line)"
        )


class Environment(models.Model):
    """A deployment stage (production, staging): flags are defined once, their state per stage."""

    key = models.CharField(max_length=63, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=100, validators=[TEXT_INPUT])
    description = models.TextField(blank=True, validators=[TEXT_INPUT])
    created_at = models.DateTimeField(auto_now_add=True)
    # Signed identities (LaunchDarkly's secure mode): the customer's backend sends
    # identityHash = HMAC-SHA256(identity_secret, targetingKey). Kept readable because
    # evaluation must recompute it; shown once when generated, never in a form or a snapshot.
    identity_secret = models.CharField(max_length=64, blank=True, editable=False)
    require_signed_identities = models.BooleanField(
        default=False,
        editable=False,  # changed through its audited service (admin action, command)
        help_text="Only clients with a valid identityHash count in guardrails and may store a "
        "capability profile.",
    )
    # Browser origins whose pages may use this environment's keys (CORS, api/cors.py); empty:
    # any origin, as client keys are public by design.
    allowed_origins = models.TextField(
        blank=True,
        validators=[TEXT_INPUT, validate_origins],
        help_text="One origin per line (https://app.example.com). Pages on other origins are "
        "refused; empty allows any origin. Servers (no Origin header) are not affected.",
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def origin_set(self) -> frozenset[str]:
        """The allowed origins (empty: any)."""
        return frozenset(origin_lines(self.allowed_origins))


class ApiKey(models.Model):
    """A credential of one environment. Only a SHA-256 hash is stored; the key is shown once."""

    class Scope(models.TextChoices):
        CLIENT = "client", "client (evaluate, probes, events)"
        SERVER = "server", "server (also downloads the ruleset)"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(
        max_length=100, validators=[TEXT_INPUT], help_text="Who or what uses this key."
    )
    scope = models.CharField(max_length=10, choices=Scope.choices)
    prefix = models.CharField(max_length=16, help_text="The visible start of the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["environment__key", "name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.scope}, {self.environment.key})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Flag(models.Model):
    """A feature flag: its key and kind are global; its state lives per environment."""

    class Kind(models.TextChoices):
        BOOLEAN = "boolean"
        STRING = "string"
        NUMBER = "number"
        OBJECT = "object"

    key = models.CharField(max_length=200, unique=True, validators=[FLAG_KEY_VALIDATOR, TEXT_INPUT])
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BOOLEAN)
    description = models.TextField(blank=True, validators=[TEXT_INPUT])
    tags = StrictJSONField(default=list, blank=True, help_text='A list of strings, e.g. ["ai"].')
    archived = models.BooleanField(
        default=False, help_text="Archived flags are left out of snapshots (FLAG_NOT_FOUND)."
    )
    baseline_rung = models.CharField(
        max_length=40,
        blank=True,
        validators=[TEXT_INPUT],
        help_text="Edge features: the best rung clients outside the rollout get (e.g. lite).",
    )
    safe_rung = models.CharField(
        max_length=40,
        default="lite",
        validators=[TEXT_INPUT],
        help_text="Edge features: the rung served when a client cannot be profiled or "
        "evaluation fails.",
    )
    estimate_confidence = models.FloatField(
        default=DEFAULT_MIN_CONFIDENCE,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Edge features: how probable an estimated signal (e.g. the memory of a "
        "Safari or Firefox client, which it does not report) must be to meet a rung's "
        "requirement; 1.0 never lets an estimate meet one.",
    )
    freshness_limit_hours = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1), MaxValueValidator(24 * 365)],
        help_text="On-device models: a retraining request is filed when the data clients "
        "personalise with is older than this on average (empty: no limit).",
    )
    cloud_cost_per_1000 = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="What 1,000 inferences of the cloud rung cost (the cost ledger prices "
        "on-device inferences at it).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Rung(models.Model):
    """One rung of an edge feature's degradation ladder (ordered best first)."""

    class RunsOn(models.TextChoices):
        DEVICE = "device", "the device (on-device model)"
        CLOUD = "cloud", "the network (server-side inference)"
        NONE = "none", "nothing (no AI)"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="rungs")
    order = models.PositiveSmallIntegerField(default=0)
    key = models.SlugField(max_length=40, help_text="edge, cloud, lite, off, …")
    value = StrictJSONField(
        null=True, blank=True, help_text="The flag value served on this rung (default: its key)."
    )
    ui_state = StrictJSONField(
        default=dict,
        help_text='What the client renders: {"component": "SmartCompose", "copy": {…}, '
        '"options": {…}} (rollout/schemas/ui_state.schema.json).',
    )
    requirements = StrictJSONField(
        default=list,
        blank=True,
        help_text="Constraints over capability fields, all required: "
        '[{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}]',
    )
    runs_on = models.CharField(
        max_length=10,
        choices=RunsOn.choices,
        default=RunsOn.NONE,
        help_text="What the rung needs at run time; runtime hints (battery, offline) "
        "take away device or cloud rungs.",
    )

    class Meta:
        ordering = ["flag", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["flag", "key"], name="one_rung_per_key")]

    def __str__(self) -> str:
        return f"{self.flag.key}: {self.key}"

    def clean(self) -> None:
        if refused_json(self.requirements, self.ui_state, self.value):
            return
        errors = validate_constraints(self.requirements, "requirements")
        errors += [f"ui_state: {problem}" for problem in ui_state_problems(self.ui_state)]
        _raise_field_errors(errors)


class Segment(models.Model):
    """A rule segment: constraints on context attributes, reusable by many rules."""

    key = models.CharField(max_length=100, unique=True, validators=[TEXT_INPUT])
    description = models.TextField(blank=True, validators=[TEXT_INPUT])
    constraints = StrictJSONField(
        default=list,
        blank=True,
        help_text="Constraints, all of which must hold: "
        '[{"contextName": "region", "operator": "IN", "values": ["eu"]}]',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        if refused_json(self.constraints):
            return
        _raise_field_errors(validate_constraints(self.constraints, "constraints"))


class FlagState(models.Model):
    """A flag in one environment: on/off, value when off, variants, rules, dependencies."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="states")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="flag_states"
    )
    enabled = models.BooleanField(default=False)
    off_value = StrictJSONField(
        null=True, blank=True, help_text="Value served when the flag is off or no rule matches."
    )
    variants = StrictJSONField(
        default=list,
        blank=True,
        help_text="Flag-level weighted variants, used when the matching rule has none: "
        '[{"name": "blue", "weight": 500, "value": "#00f"}]',
    )
    dependencies = StrictJSONField(
        default=list,
        blank=True,
        help_text='Parent flags that must hold: [{"feature": "parent", "enabled": true}]',
    )
    # The on-device model version every client of this environment is served (a rollout plan
    # of another version overrides it for its treatment arm); changed through its service.
    model_version = models.ForeignKey(
        "rollout.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a version being served cannot be deleted
        related_name="serving_states",
        help_text="The model version served on the flag's on-device rung in this environment.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["flag__key", "environment__key"]
        constraints = [
            models.UniqueConstraint(fields=["flag", "environment"], name="one_state_per_env")
        ]

    def __str__(self) -> str:
        return f"{self.flag.key} in {self.environment.key}"

    def clean(self) -> None:
        if refused_json(self.off_value, self.variants, self.dependencies):
            return
        errors = validate_variants(self.variants, "variants")
        kind = self.flag.kind if self.flag_id else None
        if kind and self.off_value is not None:
            allowed = KIND_TYPES[kind]
            if not isinstance(self.off_value, allowed) or (
                kind == "number" and isinstance(self.off_value, bool)
            ):
                errors.append(f"off_value: must be a {kind} value for a {kind} flag")
        if not isinstance(self.dependencies, list):
            errors.append("dependencies: must be a list")
        else:
            for i, dependency in enumerate(self.dependencies):
                if not isinstance(dependency, dict) or not isinstance(
                    dependency.get("feature"), str
                ):
                    errors.append(f"dependencies[{i}].feature: required, a flag key")
                elif self.flag_id and dependency["feature"] == self.flag.key:
                    errors.append(f"dependencies[{i}].feature: a flag cannot depend on itself")
        if self.model_version is not None and self.model_version.flag_id != self.flag_id:
            errors.append(f"model_version: {self.model_version} is a model of another flag")
        _raise_field_errors(errors)


class TargetingRule(models.Model):
    """One rule of a flag state. Rules are OR-ed in order; the first that matches decides."""

    class Strategy(models.TextChoices):
        FLEXIBLE_ROLLOUT = "flexibleRollout", "percentage rollout (sticky)"
        DEFAULT = "default", "everyone (constraints only)"
        USER_WITH_ID = "userWithId", "listed user ids"
        GRADUAL_ROLLOUT_USER_ID = "gradualRolloutUserId", "gradual rollout by user id (legacy)"
        GRADUAL_ROLLOUT_SESSION_ID = "gradualRolloutSessionId", "gradual rollout by session"
        GRADUAL_ROLLOUT_RANDOM = "gradualRolloutRandom", "random percentage (not sticky)"
        REMOTE_ADDRESS = "remoteAddress", "remote address in IP list"
        APPLICATION_HOSTNAME = "applicationHostname", "server host name"

    state = models.ForeignKey(FlagState, on_delete=models.CASCADE, related_name="rules")
    order = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=200, blank=True, validators=[TEXT_INPUT])
    strategy = models.CharField(
        max_length=40, choices=Strategy.choices, default=Strategy.FLEXIBLE_ROLLOUT
    )
    rollout_percentage = models.PositiveSmallIntegerField(
        default=100,
        validators=[MaxValueValidator(100)],
        help_text="Share of matching clients, 0..100 (percentage rollout only).",
    )
    stickiness = models.CharField(
        max_length=100,
        default="default",
        validators=[TEXT_INPUT],
        help_text="Attribute that buckets clients: default (targetingKey, then sessionId), "
        "random, or any attribute name.",
    )
    group_id = models.CharField(
        max_length=200,
        blank=True,
        validators=[TEXT_INPUT],
        help_text="Bucketing group; empty means the flag key.",
    )
    parameters = StrictJSONField(
        default=dict,
        blank=True,
        help_text='Strategy parameters for the other strategies, e.g. {"userIds": "a,b"}.',
    )
    constraints = StrictJSONField(default=list, blank=True)
    segments = models.ManyToManyField(Segment, blank=True, related_name="rules")
    variants = StrictJSONField(
        default=list, blank=True, help_text="Weighted variants served when this rule matches."
    )

    class Meta:
        ordering = ["state", "order", "pk"]

    def __str__(self) -> str:
        return f"rule {self.order} of {self.state}"

    def clean(self) -> None:
        if refused_json(self.parameters, self.constraints, self.variants):
            return
        errors = validate_rule(self.strategy, self.parameters or {}, "strategy")
        errors = [e.replace("strategy.parameters", "parameters") for e in errors]
        errors += validate_constraints(self.constraints, "constraints")
        errors += validate_variants(self.variants, "variants")
        if not isinstance(self.parameters, dict):
            errors.append("parameters: must be an object of strings")
        _raise_field_errors(errors)


class SnapshotVersion(models.Model):
    """A compiled, immutable ruleset of one environment. Every change publishes a new one."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveBigIntegerField()
    document = models.JSONField()
    etag = models.CharField(max_length=64)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "version"], name="one_version_per_env")
        ]

    def __str__(self) -> str:
        return f"{self.environment.key} v{self.version}"


class PublishFailure(models.Model):
    """An environment whose latest publish failed or left a part out (one row per environment).

    Written by rollout.snapshots.publish, read by /readyz (`snapshot` degraded), cleared by the next
    clean publish, which the periodic republish attempts on every tick.
    """

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="publish_failure"
    )
    problem = models.TextField()
    first_failed_at = models.DateTimeField(auto_now_add=True)
    last_failed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__key"]

    def __str__(self) -> str:
        return f"{self.environment.key}: {self.problem[:80]}"
