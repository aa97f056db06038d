from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rollout.controller import rollout_tick


class Command(BaseCommand):
    help = (
        "Run the rollout controller once: test every ramping segment's guardrails and advance, "
        "hold or roll it back (what Celery beat does every minute)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--now",
            help="the instant to decide at, ISO-8601 (default: the clock); naive means UTC",
        )

    def handle(self, *args: Any, now: str | None, **opts: Any) -> None:
        instant = timezone.now()
        if now:
            try:
                instant = datetime.fromisoformat(now)
            except ValueError as exc:
                raise CommandError(f"--now: not an ISO-8601 date-time: {now!r}") from exc
            if timezone.is_naive(instant):
                instant = timezone.make_aware(instant, UTC)
        report = rollout_tick(instant)
        for line in report.transitions:
            self.stdout.write(line)
        self.stdout.write(report.summary())
