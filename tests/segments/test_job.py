"""The segmentation job against the database: publish, stability, failure, no overlap."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from capability_probe.models import ClientProfile
from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import resolve_segment
from rollout.services import environment_create
from rollout.snapshots.compile import compile_environment
from segments.models import CapabilitySegment, SegmentationModel, SegmentationRun
from segments.services import SegmentationBusy, segmentation_run
from tests.support.profiles import profiles_keyed, profiles_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def population() -> None:
    call_command("generate_population", clients=6000, seed=7, stdout=StringIO())


def test_generate_population__n_clients__profiles_with_browser_quirks(population) -> None:
    assert ClientProfile.objects.count() == 6000
    assert ClientProfile.objects.filter(memory_gb__isnull=True).exists()  # Safari/Firefox
    assert set(
        ClientProfile.objects.exclude(memory_gb=None).values_list("memory_gb", flat=True)
    ) <= {0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0}


def test_segmentation_run__population__model_published_and_profiles_labelled(population) -> None:
    run = segmentation_run(trigger="test", seed=1)

    assert run.status == SegmentationRun.Status.SUCCEEDED
    assert 4 <= run.k <= 8
    assert run.rows == 6000
    assert sum(run.sizes.values()) + profiles_of("save-data").count() == 6000
    model = SegmentationModel.objects.get(is_current=True)
    assert model.version == run.model_version == 1
    keys = set(CapabilitySegment.objects.values_list("key", flat=True))
    assert set(profiles_keyed().values_list("segment_key", flat=True)) <= keys | {"save-data"}
    assert not ClientProfile.objects.filter(segment_identity=None).exists()


def test_segmentation_run__snapshot__assigns_segment_like_the_job(population) -> None:
    segmentation_run(trigger="test", seed=1)
    environment = environment_create(key="production")
    snapshot = snapshot_from_document(compile_environment(environment))

    agree = 0
    profiles = list(profiles_keyed().order_by("id")[:500])
    for profile in profiles:
        agree += resolve_segment(snapshot, profile.attributes()) == profile.segment_key

    assert agree / len(profiles) >= 0.99


def test_segmentation_run__twice__identities_stay_and_drift_recorded(population) -> None:
    first = segmentation_run(trigger="test", seed=1)
    before = dict(ClientProfile.objects.values_list("id", "segment_identity"))

    second = segmentation_run(trigger="test", seed=2)

    after = dict(ClientProfile.objects.values_list("id", "segment_identity"))
    same = sum(before[i] == after[i] for i in before) / len(before)
    assert same >= 0.99
    assert second.model_version == first.model_version + 1
    assert second.drift["share_psi"] < 0.02
    assert second.drift["ari"] > 0.9
    assert set(second.drift["feature_psi"])


def test_segmentation_run__too_few_profiles__failed_and_nothing_published() -> None:
    with pytest.raises(ValueError, match="at least"):
        segmentation_run(trigger="test")

    run = SegmentationRun.objects.get()
    assert run.status == SegmentationRun.Status.FAILED
    assert "at least" in run.error
    assert not SegmentationModel.objects.exists()


def test_segmentation_run__one_running__second_refused() -> None:
    SegmentationRun.objects.create(trigger="test")

    with pytest.raises(SegmentationBusy):
        segmentation_run(trigger="test")


def test_segmentation_run__killed_run_without_heartbeat__marked_failed(population) -> None:
    killed = SegmentationRun.objects.create(trigger="test")
    SegmentationRun.objects.filter(pk=killed.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=2)
    )

    segmentation_run(trigger="test", seed=1)

    killed.refresh_from_db()
    assert killed.status == SegmentationRun.Status.FAILED
    assert "killed" in killed.error


def test_run_segmentation_command__prints_summary(population) -> None:
    out = StringIO()

    call_command("run_segmentation", "--seed", "3", stdout=out)

    assert "model v1" in out.getvalue()


def test_run_segmentation_command__no_profiles__clear_error() -> None:
    with pytest.raises(CommandError, match="segmentation failed"):
        call_command("run_segmentation", stdout=StringIO())
