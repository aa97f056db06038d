from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from access.management_tokens import management_token_create
from ops.errors import DomainError
from rollout.audit import Actor


class Command(BaseCommand):
    help = (
        "Create a management-API token for a staff user and print it once (only its digest "
        "is stored; it expires after --days, EDGEFLAGS_TOKEN_TTL_DAYS by default)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=float, default=None, help="lifetime in days")

    def handle(self, *args: Any, username: str, days: float | None, **opts: Any) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user {username!r}")
        try:
            token, raw = management_token_create(
                user=user,
                actor=Actor.cli(),
                ttl=None if days is None else timedelta(days=days),
                reason="created with create_token",
            )
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Created token {token.token_key}… for {username}, "
            f"expires {token.expiry:%Y-%m-%d %H:%M} UTC; shown once:"
        )
        self.stdout.write(raw)
