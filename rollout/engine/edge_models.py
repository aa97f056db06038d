"""On-device models: which artifact a decision on an on-device rung tells the client to run.

A ladder's on-device rung may carry a model version (the snapshot document's
`ladder.rungs[i].model`, compiled by rollout/snapshots/compile.py):

    {"name": "smart-compose", "version": "3.0.0", "url": "https://…/v3.onnx",
     "sizeBytes": 48000000, "sha256": "<64 hex>", "format": "onnx",
     "requirements": [constraint, …],          # to run it: memory, accelerator, storage
     "downloadRequirements": [constraint, …],  # to fetch it: Wi-Fi, not metered, charging,
                                               # free storage (runtime hints and the probe)
     "delta"?: {"from": "2.0.0", "url": …, "sizeBytes": …, "sha256": …}}

The model's requirements are added to the rung's; its download requirements apply only to a
client that does not already hold the version (it reports `modelVersion` in its context), so
a phone that has v3 keeps running it on a metered link. A client that holds the delta's
`from` version is given the delta beside the full artifact (`update: "delta"`); it falls back
to the full artifact when the delta fails its checksum. The client's `modelVersion` is a
claim that chooses a download, never a rung it is not otherwise served.

Everything a decision says about its model is built here once, when the snapshot compiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capability_probe.vocabulary import CHARGING, CONNECTION_TYPE, METERED, STORAGE_FREE_GB

# The context attribute naming the version a client holds (edgeflags.js sends it).
HELD_VERSION = "modelVersion"
# The runtime hints that exist for download conditions (not read by the ladder itself).
DOWNLOAD_SIGNALS = frozenset({CONNECTION_TYPE.wire, METERED.wire, STORAGE_FREE_GB.wire})
# What a model's download conditions may read (charging is a ladder hint too).
DOWNLOAD_CONDITION_SIGNALS = DOWNLOAD_SIGNALS | {CHARGING.wire}

FULL, DELTA, NONE = "full", "delta", "none"


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model as one decision names it: nested (the Edgeflags API's `metadata.model`) and
    flattened into primitives (OFREP's metadata: `modelName`, `modelVersion`, …)."""

    nested: Mapping[str, Any]
    flat: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EdgeModel:
    """A compiled model version of an on-device rung, with its three possible answers."""

    name: str
    version: str
    delta_from: str | None
    full: ServedModel  # the client holds another version (or says nothing)
    delta: ServedModel | None  # the client holds `delta_from`
    held: ServedModel  # the client holds this very version: nothing to download

    def served(self, held_version: Any) -> ServedModel:
        """What a client holding `held_version` (its context's modelVersion) is told."""
        if held_version == self.version:
            return self.held
        if self.delta is not None and held_version == self.delta_from:
            return self.delta
        return self.full

    def needs_download(self, held_version: Any) -> bool:
        return bool(held_version != self.version)


def _served(nested: dict[str, Any]) -> ServedModel:
    flat: dict[str, Any] = {}
    for name, value in nested.items():
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                flat[f"model{name[:1].upper()}{name[1:]}{inner[:1].upper()}{inner[1:]}"] = (
                    inner_value
                )
        else:
            flat[f"model{name[:1].upper()}{name[1:]}"] = value
    # Plain dicts (orjson writes them as they are), shared by every decision: read-only.
    return ServedModel(nested, flat)


def compile_model(raw: Mapping[str, Any]) -> EdgeModel:
    """An EdgeModel from its document form (requirements are compiled with the rung)."""
    base: dict[str, Any] = {
        "name": str(raw["name"]),
        "version": str(raw["version"]),
        "format": str(raw.get("format") or ""),
        "url": str(raw["url"]),
        "sizeBytes": int(raw["sizeBytes"]),
        "sha256": str(raw["sha256"]),
    }
    delta_raw = raw.get("delta")
    delta = None
    delta_from = None
    if isinstance(delta_raw, Mapping) and delta_raw.get("from"):
        delta_from = str(delta_raw["from"])
        delta = _served(
            {
                **base,
                "update": DELTA,
                "delta": {
                    "from": delta_from,
                    "url": str(delta_raw["url"]),
                    "sizeBytes": int(delta_raw["sizeBytes"]),
                    "sha256": str(delta_raw["sha256"]),
                },
            }
        )
    return EdgeModel(
        name=base["name"],
        version=base["version"],
        delta_from=delta_from,
        full=_served({**base, "update": FULL}),
        delta=delta,
        held=_served({**base, "update": NONE}),
    )
