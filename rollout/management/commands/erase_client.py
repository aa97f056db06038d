from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from capability_probe.services import ErasureIncomplete, client_erase_everywhere
from rollout.audit import Actor, audit_record


class Command(BaseCommand):
    help = (
        "Erase everything stored about one client in every environment "
        "(its profiles and probe receipts); audited as the OS user."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("client_id", help="the clientId the client sends in its probes")

    def handle(self, *args: Any, client_id: str, **options: Any) -> None:
        try:
            with transaction.atomic():  # the erasure and its audit entry commit together
                erased = client_erase_everywhere(client_id=client_id)
                # The audit entry says an erasure happened, not whom it was for.
                audit_record(
                    actor=Actor.cli(),
                    action="client.erase",
                    after={"erased": erased},
                    reason="erase_client",
                )
        except ErasureIncomplete as exc:
            raise CommandError(f"{exc}: nothing was erased; run the command again later") from exc
        if erased:
            self.stdout.write("Erased the client's profiles and probe receipts.")
        else:
            self.stdout.write("Nothing stored for that client.")
