from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.signed_identities import (
    environment_identity_secret_rotate,
    environment_signed_identities_require,
)
from ops.errors import DomainError
from rollout.audit import Actor
from rollout.models import Environment


class Command(BaseCommand):
    help = (
        "Signed identities of an environment: --rotate-secret generates its identity secret "
        "and prints it once (your backend sends identityHash = hex HMAC-SHA256(secret, "
        "targetingKey)); --require / --allow-unsigned switch whether only signed identities "
        "count in guardrails and may store a capability profile. Audited."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--environment", required=True)
        parser.add_argument("--rotate-secret", action="store_true")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--require", dest="required", action="store_true", default=None)
        mode.add_argument("--allow-unsigned", dest="required", action="store_false")
        parser.add_argument("--actor", default="cli", help="who, for the audit log")

    def handle(
        self,
        *args: Any,
        environment: str,
        rotate_secret: bool,
        required: bool | None,
        actor: str,
        **opts: Any,
    ) -> None:
        env = Environment.objects.filter(key=environment).first()
        if env is None:
            known = ", ".join(Environment.objects.values_list("key", flat=True)) or "none"
            raise CommandError(f"--environment: no environment {environment!r} (known: {known})")
        if not rotate_secret and required is None:
            raise CommandError("nothing to do: give --rotate-secret, --require or --allow-unsigned")
        who = Actor(actor)
        if rotate_secret:
            secret = environment_identity_secret_rotate(environment=env, actor=who)
            self.stderr.write(f"New identity secret of {env.key}; shown once:")
            self.stdout.write(secret)
        if required is not None:
            try:
                environment_signed_identities_require(environment=env, required=required, actor=who)
            except DomainError as exc:
                raise CommandError(str(exc)) from exc
            self.stderr.write(
                f"{env.key}: signed identities " + ("required" if required else "not required")
            )
