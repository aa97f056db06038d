"""Capability profiles: the latest normalised probe of each client, under a keyed hash.

The raw client id is never stored: rows are keyed by HMAC-SHA256(clientId, server secret).
Missing signals stay NULL (Safari reports no device memory); nothing is invented.

Profiles and receipts belong to one environment (the id of the environment whose key sent
the probe): a staging key can neither read, overwrite nor erase a production profile. The id
is a plain integer, not a foreign key, because this app sits below `rollout` (which owns
environments). Rows with no environment (synthetic populations, and profiles stored before
profiles were scoped, when any environment's key could have written them) are read by no
key; segmentation fits on every row, since a device's capability does not depend on which
environment it talks to.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from capability_probe.vocabulary import ATTRIBUTE_COLUMNS, SETTLED_RUNGS

# Profile column -> the attribute name clients, the engine and the segmentation model use.
ATTRIBUTE_NAMES: dict[str, str] = ATTRIBUTE_COLUMNS
# The profile's columns that are not capability: who, when, how often, and what was derived.
BOOKKEEPING_COLUMNS = frozenset(
    {"id", "environment_id", "client_hash", "received_at", "probe_count", "runtime",
     "segment_identity", "history", "settled_rungs"}
)  # fmt: skip


def columns_to_attributes(columns: dict[str, Any]) -> dict[str, Any]:
    """Profile columns as evaluation-context attributes (missing signals left out)."""
    return {
        ATTRIBUTE_NAMES[column]: value
        for column, value in columns.items()
        if column in ATTRIBUTE_NAMES and value is not None and value != ""
    }


class ClientProfile(models.Model):
    """What one client last reported about its device, network and platform."""

    environment_id = models.BigIntegerField(null=True, blank=True)
    client_hash = models.CharField(max_length=64)
    received_at = models.DateTimeField(db_index=True)
    probe_count = models.PositiveIntegerField(default=1)
    # device
    memory_gb = models.FloatField(null=True, blank=True)
    cores = models.PositiveSmallIntegerField(null=True, blank=True)
    webgpu = models.BooleanField(null=True, blank=True)
    shader_f16 = models.BooleanField(null=True, blank=True)
    webnn = models.BooleanField(null=True, blank=True)
    wasm_simd = models.BooleanField(null=True, blank=True)
    wasm_threads = models.BooleanField(null=True, blank=True)
    storage_gb = models.FloatField(null=True, blank=True)
    media_performance_class = models.PositiveSmallIntegerField(null=True, blank=True)
    npu = models.BooleanField(null=True, blank=True)
    benchmark_ms = models.FloatField(null=True, blank=True)
    benchmark_workload = models.CharField(max_length=64, blank=True)
    # network
    rtt_ms = models.PositiveIntegerField(null=True, blank=True)
    downlink_mbps = models.FloatField(null=True, blank=True)
    effective_type = models.CharField(max_length=8, blank=True)
    # measured by the client itself (probe.js, native apps), with the samples behind each
    measured_rtt_ms = models.PositiveIntegerField(null=True, blank=True)
    measured_rtt_samples = models.PositiveSmallIntegerField(null=True, blank=True)
    measured_downlink_mbps = models.FloatField(null=True, blank=True)
    measured_downlink_samples = models.PositiveSmallIntegerField(null=True, blank=True)
    save_data = models.BooleanField(null=True, blank=True)
    # platform
    os = models.CharField(max_length=64, blank=True)
    os_version = models.CharField(max_length=64, blank=True)
    browser = models.CharField(max_length=64, blank=True)
    browser_version = models.CharField(max_length=64, blank=True)
    app_version = models.CharField(max_length=64, blank=True)
    mobile = models.BooleanField(null=True, blank=True)
    # runtime state at the last probe (battery, pressure, online): shown, never clustered
    runtime = models.JSONField(default=dict, blank=True)
    # the identity of the capability segment the current model gives this client (a rename
    # changes the segment's key, not this)
    segment_identity = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    # the last few normalised probes, newest first (no identifiers)
    history = models.JSONField(default=list, blank=True)
    # per ladder flag, the rung this client's probes have settled on (rollout/engine/
    # settling.py): {flag key: {"rung": key, "pending"?: key, "count"?: n}}
    settled_rungs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment_id", "client_hash"], name="profile_one_per_client"
            )
        ]

    def __str__(self) -> str:
        return f"client {self.client_hash[:12]}…"

    def attributes(self) -> dict[str, Any]:
        """The profile as evaluation-context attributes (missing signals left out)."""
        attributes = columns_to_attributes(
            {column: getattr(self, column) for column in ATTRIBUTE_NAMES}
        )
        if self.settled_rungs:
            attributes[SETTLED_RUNGS] = self.settled_rungs
        return attributes


class ProbeReceipt(models.Model):
    """A probe already taken in: the same client retrying the same probe changes nothing.

    Scoped to the client (environment, hashed client id) and to the probe's content, so a
    probe id seen before, sent for another client or with other content, is a new probe: the
    answer to a replayed id never depends on what anyone else stored.
    """

    environment_id = models.BigIntegerField()
    client_hash = models.CharField(max_length=64)
    probe_id = models.CharField(max_length=64)
    # SHA-256 of the normalised probe (`schema.probe_fingerprint`)
    fingerprint = models.CharField(max_length=64)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment_id", "client_hash", "probe_id", "fingerprint"],
                name="receipt_one_per_client_probe",
            )
        ]

    def __str__(self) -> str:
        return self.probe_id
