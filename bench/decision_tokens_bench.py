"""µs a decision token adds: the per-request issuer, each token, and each event's check.

Run: .venv/bin/python bench/decision_tokens_bench.py [--rounds 200000]
Budget (docs/budgets.md): a flag decision ≤ 5 µs in-process, the evaluate endpoint ≥ 4,800
req/s for 20 flags; a token is paid only by decisions under a rollout plan.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from access.decision_tokens import TokenIssuer, TokenVerifier

SECRET = b"edgeflags-decision-tokens:" + b"s" * 50
LIFETIME_S = 24 * 3600


def _per_call(fn: object, rounds: int) -> float:
    call = fn  # a local name: the loop below is what is measured
    started = time.perf_counter()
    for _ in range(rounds):
        call()  # type: ignore[operator]
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    rounds = parser.parse_args().rounds
    keys = iter(f"client-{n}" for n in range(10 * rounds))

    def issuer() -> TokenIssuer:
        return TokenIssuer(
            secret=SECRET,
            environment_id=1,
            targeting_key=next(keys),
            signed=False,
            now=time.time(),
            lifetime_s=LIFETIME_S,
        )

    one = issuer()
    token = one.issue("smart-compose", 3, "treatment")

    per_request = _per_call(issuer, rounds)
    per_token = _per_call(lambda: one.issue("smart-compose", 3, "treatment"), rounds)

    def check() -> None:
        verifier = TokenVerifier(
            secret=SECRET,
            environment_id=1,
            targeting_key="client-0",
            now=time.time(),
            lifetime_s=LIFETIME_S,
        )
        verifier.verify(token, "smart-compose")

    per_event = _per_call(check, rounds // 4)
    first = _per_call(lambda: issuer().issue("smart-compose", 3, "treatment"), rounds)
    print(f"issuer per request, no flag under a plan: {per_request:.2f} µs")
    print(f"first token of a request (new client):    {first:.2f} µs")
    print(f"each further token:                       {per_token:.2f} µs")
    print(f"20 flags all under plans, per request:    {first + 19 * per_token:.1f} µs")
    print(f"events: a batch's verifier + one check:   {per_event:.2f} µs")
    print(f"token example ({len(token)} chars): {token}")


if __name__ == "__main__":
    main()
