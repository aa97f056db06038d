from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from ops.services import admin_ensure


class Command(BaseCommand):
    help = "Create a superuser when none exists (password: EDGEFLAGS_ADMIN_PASSWORD or generated)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        login = admin_ensure(username=username, password=settings.EDGEFLAGS_ADMIN_PASSWORD)
        if login.created:
            self.stdout.write(f"Admin login: {login.username} / {login.password}")
            if not settings.EDGEFLAGS_ADMIN_PASSWORD:
                self.stdout.write("  (generated; shown only this once)")
        else:
            self.stdout.write(
                f"Admin login: {login.username} (password set earlier; "
                f"change it with `.venv/bin/python manage.py changepassword {login.username}`)"
            )
