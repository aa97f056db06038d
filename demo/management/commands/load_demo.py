from typing import Any

from django.core.management.base import BaseCommand

from demo.data import demo_load


class Command(BaseCommand):
    help = "Load realistic demo data; safe to run again (creates only what is missing)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_load()
        for line in created:
            self.stdout.write(f"  created {line}")
        self.stdout.write(f"Demo data ready ({len(created)} new item(s)).")
