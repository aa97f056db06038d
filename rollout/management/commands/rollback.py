from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rollout.audit import Actor
from rollout.rollouts import RolloutError, rollout_action, rollout_kill
from rollout.selectors import segment_key_of


class Command(BaseCommand):
    help = (
        "Roll back a flag's rollout in one segment, or in every segment without --segment "
        "(the kill switch). Served by every API process within a second."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("flag", help="the flag key")
        parser.add_argument("--environment", required=True)
        parser.add_argument("--segment", help="one segment key (default: every segment)")
        parser.add_argument("--reason", required=True, help="why (goes into the audit log)")
        parser.add_argument(
            "--actor", default="", help="on whose behalf, for the audit log (beside the OS user)"
        )

    def handle(
        self,
        *args: Any,
        flag: str,
        environment: str,
        segment: str | None,
        reason: str,
        actor: str,
        **opts: Any,
    ) -> None:
        shell = Actor.cli()
        who = Actor(f"{shell.name} for {actor}"[:150]) if actor else shell
        try:
            if segment:
                rows = [
                    rollout_action(
                        flag=flag,
                        environment=environment,
                        segment=segment,
                        action="rollback",
                        actor=who,
                        reason=reason,
                    )
                ]
            else:
                rows = rollout_kill(flag=flag, environment=environment, actor=who, reason=reason)
        except RolloutError as exc:
            raise CommandError(
                f"--{exc.field}: {exc.message}" if exc.field != "flag" else str(exc)
            ) from exc
        if not rows:
            self.stdout.write(f"{flag} in {environment}: every segment was already rolled back")
        for row in rows:
            self.stdout.write(
                f"rolled back {flag} in {environment} for segment {segment_key_of(row)}"
            )
