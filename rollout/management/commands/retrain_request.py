from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ops.errors import DomainError
from rollout.audit import Actor
from rollout.retraining import retrain_request_by_hand


class Command(BaseCommand):
    help = (
        "File a retraining request for the on-device model a segment runs, through the same "
        "path as the drift controller (audit entry, console notice, signed webhook). It "
        "changes nothing clients are served."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("flag", help="the flag key")
        parser.add_argument("--environment", required=True)
        parser.add_argument("--segment", required=True, help="the segment key")
        parser.add_argument("--reason", required=True, help="why (goes into the audit log)")
        parser.add_argument(
            "--actor", default="", help="on whose behalf, for the audit log (beside the OS user)"
        )

    def handle(
        self,
        *args: Any,
        flag: str,
        environment: str,
        segment: str,
        reason: str,
        actor: str,
        **opts: Any,
    ) -> None:
        shell = Actor.cli()
        who = Actor(f"{shell.name} for {actor}"[:150]) if actor else shell
        try:
            request = retrain_request_by_hand(
                flag=flag, environment=environment, segment=segment, reason=reason, actor=who
            )
        except DomainError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        version = request.model_version or "no model version"
        deliveries = request.deliveries.count()
        self.stdout.write(
            f"retraining request {request.pk} filed: {flag} ({version}) in {segment}, "
            f"{environment}; "
            + ("webhook delivery queued" if deliveries else "no webhook configured")
        )
