from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.api_keys import api_key_create
from rollout.audit import Actor
from rollout.models import ApiKey, Environment


class Command(BaseCommand):
    help = "Create an API key for an environment and print it once (only its hash is stored)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--environment", required=True)
        parser.add_argument("--scope", required=True, choices=[s.value for s in ApiKey.Scope])
        parser.add_argument("--name", default="", help="who or what uses the key")

    def handle(self, *args: Any, environment: str, scope: str, name: str, **opts: Any) -> None:
        env = Environment.objects.filter(key=environment).first()
        if env is None:
            known = ", ".join(Environment.objects.values_list("key", flat=True)) or "none"
            raise CommandError(f"--environment: no environment {environment!r} (known: {known})")
        api_key, raw_key = api_key_create(
            environment=env,
            scope=scope,
            name=name or f"{scope} key (command line)",
            actor=Actor.cli(),
            reason="created with create_api_key",
        )
        self.stderr.write(f"Created {scope} key {api_key.prefix}… for {env.key}; shown once:")
        self.stdout.write(raw_key)
