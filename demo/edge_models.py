"""The demo's on-device models: two versions of smart-compose's reply model, with a delta.

The artifacts are real files served with the demo's static files, so a browser can fetch one
and check its SHA-256; their URLs name the web process `make run` starts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings

from rollout.edge_models import model_version_register, model_version_serve
from rollout.models import Environment, Flag, FlagState, ModelVersion

ARTIFACTS = Path(__file__).resolve().parent / "static" / "edgeflags" / "models"
FLAG = "smart-compose"
MODEL = "tiny-reply"
CURRENT, NEXT = "2.0.0", "3.0.0"
RUN_REQUIREMENTS = [{"contextName": "memoryGb", "operator": "NUM_GTE", "value": "4"}]
# Fetch only off metered links (native apps say; browsers never report metered).
DOWNLOAD_REQUIREMENTS = [{"contextName": "metered", "operator": "NOT_IN", "values": ["true"]}]


def _url(name: str) -> str:
    return (
        f"http://{settings.EDGEFLAGS_HOST}:{settings.EDGEFLAGS_PORT}/static/edgeflags/models/{name}"
    )


def _artifact(name: str) -> dict[str, Any]:
    data = (ARTIFACTS / name).read_bytes()
    return {"url": _url(name), "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _register(flag: Flag, version: str, **extra: Any) -> ModelVersion:
    return model_version_register(
        flag=flag,
        name=MODEL,
        version=version,
        format=ModelVersion.Format.ONNX,
        requirements=RUN_REQUIREMENTS,
        download_requirements=DOWNLOAD_REQUIREMENTS,
        reason="demo data",
        **_artifact(f"{MODEL}-{version}.bin"),
        **extra,
    )


def demo_models_load(environments: list[Environment]) -> list[str]:
    """Register both versions (v3 with a delta from v2) and serve v2 in `environments`."""
    flag = Flag.objects.get(key=FLAG)
    if ModelVersion.objects.filter(flag=flag).exists():
        return []
    current = _register(flag, CURRENT, notes="int8, 4-bit embeddings")
    delta = _artifact(f"{MODEL}-{CURRENT}-{NEXT}.delta")
    _register(
        flag,
        NEXT,
        delta_from=CURRENT,
        delta_url=delta["url"],
        delta_size_bytes=delta["size_bytes"],
        delta_sha256=delta["sha256"],
        notes="distilled on 30 days of accepted replies",
    )
    for environment in environments:
        state = FlagState.objects.get(flag=flag, environment=environment)
        model_version_serve(state=state, version=current, reason="demo data")
    return [f"model versions {MODEL} {CURRENT} and {NEXT} (with a delta) of {FLAG}"]
