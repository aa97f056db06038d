import json
import math
import os
import random
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from capability_probe.models import ClientProfile
from demo.data import traffic_client_key


class Command(BaseCommand):
    help = (
        "Play synthetic clients against a running server so that the demo's rollout numbers "
        "move: each client evaluates the edge features over HTTP (the server counts the "
        "exposure) and reports telemetry to /api/v1/events like a real app would, echoing "
        "each decision's decisionToken."
    )

    def add_arguments(self, parser: Any) -> None:
        # The same variables the Procfile's web process listens on.
        host = os.environ.get("EDGEFLAGS_HOST", "127.0.0.1")
        port = os.environ.get("EDGEFLAGS_PORT", "8000")
        parser.add_argument("--url", default=f"http://{host}:{port}")
        parser.add_argument(
            "--key", help="client API key (default: the production key load_demo made for it)"
        )
        parser.add_argument("--clients-per-minute", type=float, default=120.0)
        parser.add_argument("--flags", nargs="+", default=["lead-summary", "smart-compose"])
        parser.add_argument(
            "--regress-segment",
            help="a segment whose treatment arm crashes three times as often (to watch the "
            "guardrails fire)",
        )
        parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = forever")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        rate = opts["clients_per_minute"]
        if not opts["url"].startswith(("http://", "https://")):
            raise CommandError("--url: must be an http:// or https:// URL")
        if not 0 < rate <= 60_000:
            raise CommandError("--clients-per-minute: must be within (0, 60000]")
        rng = random.Random(opts["seed"])  # noqa: S311 - synthetic traffic, not secrets
        # A sample of the stored population, sent as inline capability. Wait rather than
        # exit when there is none yet: under honcho one exiting process stops them all.
        while not (profiles := [p.attributes() for p in ClientProfile.objects.order_by("?")[:500]]):
            self.stderr.write("traffic: no capability profiles yet (load_demo); waiting")
            time.sleep(10)
        traffic = Traffic(opts["url"].rstrip("/"), opts["key"] or traffic_client_key(), opts, rng)
        started = time.monotonic()
        report_at = started + 60
        while not opts["duration"] or time.monotonic() - started < opts["duration"]:
            tick = time.monotonic()
            for _ in range(_poisson(rng, rate / 60.0)):
                traffic.client(rng.choice(profiles))
            if time.monotonic() >= report_at:
                self.stdout.write(traffic.summary())
                report_at += 60
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        self.stdout.write(traffic.summary())


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of one second of traffic.
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class Traffic:
    """One synthetic client at a time: evaluate, then report what happened."""

    def __init__(self, url: str, key: str, opts: dict[str, Any], rng: random.Random) -> None:
        self.url, self.key, self.rng = url, key, rng
        self.flags = list(opts["flags"])
        self.regress = opts["regress_segment"]
        self.counts = {"evaluations": 0, "events": 0, "errors": 0}
        self.last_error = ""

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        request = urllib.request.Request(  # noqa: S310 - --url is checked to be http(s)
            f"{self.url}{path}",
            data=json.dumps(body, default=str).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return dict(json.loads(response.read() or b"{}"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.counts["errors"] += 1
            self.last_error = f"{path}: {exc}"
            return None

    def client(self, attributes: dict[str, Any]) -> None:
        key = f"sim-{self.rng.randrange(20_000)}"
        answer = self._post(
            "/api/v1/evaluate",
            {"context": {"targetingKey": key, **attributes}, "flags": self.flags},
        )
        if answer is None:
            return
        self.counts["evaluations"] += 1
        events = []
        for flag, decision in (answer.get("flags") or {}).items():
            metadata = decision.get("metadata") or {}
            if "decisionToken" not in metadata:
                continue  # not under a rollout: nothing for an event to count in
            events += self._events(flag, metadata, attributes)
        if events and self._post("/api/v1/events", {"targetingKey": key, "events": events}):
            self.counts["events"] += len(events)

    def _events(
        self, flag: str, metadata: dict[str, Any], attributes: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rng = self.rng
        base = {"flag": flag, "decisionToken": metadata["decisionToken"]}
        crash_rate = 0.01
        if metadata["arm"] == "treatment" and metadata["segment"] == self.regress:
            crash_rate *= 3
        benchmark = float(attributes.get("benchmarkMs") or 60.0)
        events: list[dict[str, Any]] = [{"id": str(uuid.uuid4()), "type": "exposure", **base}]
        for _ in range(rng.randint(1, 5)):
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": "inference",
                    "ms": round(benchmark * rng.lognormvariate(0, 0.5), 2),
                    "ok": rng.random() > 0.002,
                    **base,
                }
            )
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": "energy",
                    "millijoules": round(40 * rng.lognormvariate(0, 0.3), 2),
                    **base,
                }
            )
        if rng.random() < crash_rate:
            events.append({"id": str(uuid.uuid4()), "type": "crash", **base})
        if rng.random() < 0.3:
            rating = min(5, max(1, round(rng.gauss(4.1, 1.0))))
            events.append({"id": str(uuid.uuid4()), "type": "feedback", "rating": rating, **base})
        return events

    def summary(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts.items())
        return f"traffic: {counts}" + (
            f" (last error {self.last_error})" if self.last_error else ""
        )
