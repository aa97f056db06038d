"""Find, in a live server's data, a client that its segment's rollout treats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.support.processes import manage

# Run in the server's own environment (manage.py shell): a client of `flag` in the treatment
# arm of a ramping or complete segment that gets a rung above the baseline, found with the
# server's engine and published snapshot.
_FIND = """
import json
from capability_probe.models import ClientProfile
from rollout.engine.evaluate import evaluate
from rollout.snapshots.store import store

snapshot = store.snapshot("production").snapshot
for profile in ClientProfile.objects.order_by("pk")[:3000]:
    attributes = profile.attributes()
    for i in range(100):
        context = {"targetingKey": f"%(prefix)s-{i}", **attributes}
        decision = evaluate(snapshot, %(flag)r, context)
        if (decision.metadata.get("arm") == "treatment" and decision.variant != "lite"
                and decision.metadata.get("rolloutState") in ("ramping", "complete")):
            print(json.dumps({"context": context, "segment": decision.metadata["segment"],
                              "variant": decision.variant}, default=str))
            raise SystemExit(0)
raise SystemExit("no treated client found")
"""


def treated_client(env: Mapping[str, str], flag: str, prefix: str) -> dict[str, Any]:
    """{"context", "segment", "variant"} of a treated client of `flag` in production."""
    out = manage(env, "shell", "-c", _FIND % {"flag": flag, "prefix": prefix})
    return dict(json.loads(out.strip().splitlines()[-1]))
