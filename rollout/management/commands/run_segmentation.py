from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rollout.audit import Actor
from rollout.segment_review import segmentation_run_foreground
from segments.services import SegmentationBusy


class Command(BaseCommand):
    help = "Run capability segmentation in the foreground and publish the new model."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, seed: int, **options: Any) -> None:
        try:
            run = segmentation_run_foreground(
                actor=Actor.cli(), seed=seed, progress=self.stdout.write
            )
        except SegmentationBusy as exc:
            raise CommandError(str(exc)) from exc
        except ValueError as exc:
            raise CommandError(f"segmentation failed: {exc}") from exc
        self.stdout.write(
            f"Run {run.pk}: {run.rows} profiles, k={run.k}, silhouette {run.silhouette:.3f}, "
            f"model v{run.model_version}, {run.timings.get('total')} s"
        )
        for key, size in sorted(run.sizes.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {key:<24} {size:>9}")
        if run.drift:
            self.stdout.write(
                f"Drift: share PSI {run.drift['share_psi']:.4f}, "
                f"max feature PSI {run.drift['max_feature_psi']:.4f}, ARI {run.drift['ari']:.3f}"
            )
