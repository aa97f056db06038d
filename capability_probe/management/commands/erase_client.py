from typing import Any

from django.core.management.base import BaseCommand

from capability_probe.services import client_erase_everywhere


class Command(BaseCommand):
    help = (
        "Erase everything stored about one client in every environment "
        "(its profiles and probe receipts)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("client_id", help="the clientId the client sends in its probes")

    def handle(self, *args: Any, client_id: str, **options: Any) -> None:
        if client_erase_everywhere(client_id=client_id):
            self.stdout.write("Erased the client's profiles and probe receipts.")
        else:
            self.stdout.write("Nothing stored for that client.")
