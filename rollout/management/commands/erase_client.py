from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from capability_probe.services import client_erase_everywhere, client_hash
from rollout.audit import Actor, audit_record


class Command(BaseCommand):
    help = (
        "Erase everything stored about one client in every environment "
        "(its profiles and probe receipts); audited as the OS user."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("client_id", help="the clientId the client sends in its probes")

    def handle(self, *args: Any, client_id: str, **options: Any) -> None:
        with transaction.atomic():  # the erasure and its audit entry commit together
            erased = client_erase_everywhere(client_id=client_id)
            # The audit log names the client by a prefix of its keyed hash, never the raw id.
            audit_record(
                actor=Actor.cli(),
                action="client.erase",
                after={"client": client_hash(client_id)[:16], "erased": erased},
                reason="erase_client",
            )
        if erased:
            self.stdout.write("Erased the client's profiles and probe receipts.")
        else:
            self.stdout.write("Nothing stored for that client.")
