import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from interop.unleash import unleash_import
from ops.json_input import JsonInputError
from rollout.audit import Actor
from rollout.services import environment_get_or_create


class Command(BaseCommand):
    help = (
        "Import an Unleash client-features export (GET /api/client/features, or a delta "
        "{events}) into one environment, keeping every client's bucket."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="the export, a JSON file ('-' for stdin)")
        parser.add_argument("--environment", required=True, help="created when missing")

    def handle(self, *args: Any, file: Path, environment: str, **options: Any) -> None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text()
            document = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"{file}: {exc}") from exc
        except RecursionError:
            raise CommandError(f"{file}: nested too deeply to be read") from None
        if not isinstance(document, dict) or not ("features" in document or "events" in document):
            raise CommandError(f"{file}: not an Unleash client-features export (no 'features')")
        actor = Actor.cli()
        with transaction.atomic():  # a new environment only with the import that needs it
            env, created = environment_get_or_create(key=environment, actor=actor)
            try:
                report = unleash_import(
                    document=document, environment=env, actor=actor, source=str(file)
                )
            except JsonInputError as exc:
                raise CommandError(f"{file}: {exc}") from exc
        if created:
            self.stdout.write(f"Created environment {env.key}.")
        self.stdout.write(
            f"Imported {len(report.flags_created) + len(report.flags_updated)} flag(s) "
            f"({len(report.flags_created)} new) and {len(report.segments)} segment(s) "
            f"into {env.key}."
        )
        if report.unmapped:
            self.stdout.write(f"Could not map {len(report.unmapped)} item(s):")
            for line in report.unmapped:
                self.stdout.write(f"  - {line}")
