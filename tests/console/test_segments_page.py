"""The console's Segments page: what viewers and release managers see, the review actions
(accept, rename, merge) with their confirmation, audit entries and snapshots, bad input,
and a bounded number of queries."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from capability_probe.models import ClientProfile
from rollout.audit import Actor
from rollout.engine.document import snapshot_from_document
from rollout.engine.evaluate import resolve_segment
from rollout.models import AuditEntry, Environment, FlagState, SnapshotVersion
from rollout.rollouts import rollout_plan_create
from rollout.services import flag_create, flag_ladder_set, flag_state_update
from segments.models import CapabilitySegment, SegmentationRun
from segments.services import segmentation_run
from tests.support.profiles import profiles_of
from tests.support.rollouts import LADDER, START, rows_of

pytestmark = pytest.mark.django_db

PAGE = "/admin/console/segments/"
ACTION = "/admin/console/segments/actions"


def _staff(name: str, group: str | None) -> User:
    user = User.objects.create_user(name, password="pw-for-tests-only", is_staff=True)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def manager(client):
    client.force_login(_staff("rm", "release manager"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(_staff("vi", "viewer"))
    return client


@pytest.fixture
def segmented(environment, publish) -> list[CapabilitySegment]:
    """1,000 synthetic clients segmented twice (so there is drift), a rollout plan of an edge
    feature over every segment, and the smallest segment flagged for review."""
    call_command("generate_population", clients=1000, seed=7, stdout=StringIO())
    publish(lambda: segmentation_run(trigger="test", seed=1))
    publish(lambda: segmentation_run(trigger="test", seed=2))
    flag = publish(lambda: flag_create(key="smart-compose", kind="string", off_value="off"))
    publish(lambda: flag_ladder_set(flag=flag, rungs=LADDER, baseline="lite"))
    state = FlagState.objects.get(flag=flag, environment=environment)
    publish(lambda: flag_state_update(state=state, enabled=True))
    publish(lambda: rollout_plan_create(state=state, actor=Actor("test"), now=START))
    segments = list(CapabilitySegment.objects.order_by("-size"))
    CapabilitySegment.objects.filter(pk=segments[-1].pk).update(
        status=CapabilitySegment.Status.REVIEW
    )
    return list(CapabilitySegment.objects.order_by("-size"))


@pytest.fixture
def review(segmented) -> CapabilitySegment:
    return CapabilitySegment.objects.get(status=CapabilitySegment.Status.REVIEW)


def _latest_document(environment: Environment) -> dict:
    return SnapshotVersion.objects.filter(environment=environment).order_by("-version")[0].document


def _confirmed(client, publish, **data):
    return publish(lambda: client.post(ACTION, {**data, "confirmed": "yes"}))


# Reading


def test_segments_page__viewer__profiles_shares_drift_and_runs_without_forms(
    segmented, viewer
) -> None:
    response = viewer.get(PAGE)

    assert response.status_code == 200
    body = response.content.decode()
    for segment in segmented:
        assert f'id="segment-{segment.key}"' in body
    assert body.count('<svg class="seg-bars"') == len(segmented) + 1  # and the review card
    assert body.count('<svg class="seg-line"') == len(segmented)
    assert 'role="img"' in body
    assert "<title>Centroid of " in body
    assert "needs review" in body  # the status in words
    assert "Segment share PSI" in body
    assert 'id="feature-psi-table"' in body
    assert 'id="runs-table"' in body
    assert body.count("succeeded") >= 2
    assert 'id="share-table"' in body
    assert "<form" not in body.split('<div id="content"')[1]  # no action, no "Run now"
    assert "Run now" not in body
    assert "Read only" in body


def test_segments_page__centroid_bars__raw_values_scaled_to_the_field_maximum(
    segmented, viewer
) -> None:
    fastest = min(
        (s for s in segmented if s.centroid.get("benchmarkMs") is not None),
        key=lambda s: s.centroid["benchmarkMs"],
    )
    slowest = max(
        (s for s in segmented if s.centroid.get("benchmarkMs") is not None),
        key=lambda s: s.centroid["benchmarkMs"],
    )

    body = viewer.get(PAGE).content.decode()

    card = body.split(f'id="segment-{slowest.key}"')[1].split("</article>")[0]
    assert (
        'width="140.0" height="12"><title>benchmark: ' in card
    )  # the largest value fills the track
    assert "ms</text>" in card  # the raw value is printed, with its unit
    if fastest.key != slowest.key:
        card = body.split(f'id="segment-{fastest.key}"')[1].split("</article>")[0]
        assert 'width="140.0" height="12"><title>benchmark: ' not in card


def test_segments_page__release_manager__run_now_and_review_forms(segmented, review, manager):
    body = manager.get(PAGE).content.decode()

    assert f'action="{reverse("admin:segments_segmentationrun_run_now")}"' in body
    assert 'id="run-now"' in body
    assert f'id="review-{review.key}"' in body
    for action in ("accept", "rename", "merge"):
        assert f'name="action" value="{action}"' in body
    assert "csrfmiddlewaretoken" in body


def test_segments_page__not_staff__sent_to_login(client, segmented) -> None:
    assert client.get(PAGE).status_code == 302
    client.force_login(User.objects.create_user("someone", password="pw"))

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.post(ACTION, {"action": "accept"}).status_code == 302


def test_segments_page__queries__bounded_whatever_the_runs(
    segmented, manager, django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(12):
        first = manager.get(PAGE)
    segmentation_run(trigger="test", seed=3)
    for _ in range(5):
        SegmentationRun.objects.create(trigger="test", status=SegmentationRun.Status.FAILED)

    with django_assert_max_num_queries(12):
        second = manager.get(PAGE)

    assert first.status_code == second.status_code == 200


def test_segments_page__no_run_yet__empty_states(environment, manager) -> None:
    body = manager.get(PAGE).content.decode()

    assert "No capability segment yet" in body
    assert "No segmentation run has succeeded yet." in body
    assert "No segmentation run yet." in body


# Acting


def test_segment_action__viewer_post__403_and_nothing_changes(review, viewer) -> None:
    response = viewer.post(ACTION, {"action": "accept", "segment": review.key, "confirmed": "yes"})

    assert response.status_code == 403
    review.refresh_from_db()
    assert review.status == CapabilitySegment.Status.REVIEW
    assert not AuditEntry.objects.filter(action__startswith="segment.").exists()


def test_accept__first_post__asks_for_confirmation_and_changes_nothing(review, manager) -> None:
    response = manager.post(ACTION, {"action": "accept", "segment": review.key})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Confirm accept" in body
    assert 'name="confirmed" value="yes"' in body
    assert f"{review.key} ({review.label}) becomes active" in body
    review.refresh_from_db()
    assert review.status == CapabilitySegment.Status.REVIEW
    assert not AuditEntry.objects.filter(action="segment.accept").exists()


def test_accept__confirmed__active_audited_and_told(review, manager, publish) -> None:
    response = _confirmed(
        manager, publish, action="accept", segment=review.key, reason="looks like a tablet tier"
    )

    assert response.status_code == 303
    assert response["Location"] == PAGE
    review.refresh_from_db()
    assert review.status == CapabilitySegment.Status.ACTIVE
    entry = AuditEntry.objects.get(action="segment.accept")
    assert (entry.actor_name, entry.segment, entry.reason) == (
        "rm",
        review.key,
        "looks like a tablet tier",
    )
    assert (entry.before["status"], entry.after["status"]) == ("review", "active")
    assert "becomes active" in manager.get(PAGE).content.decode()  # the message


def test_rename__confirmed__rollouts_profiles_and_snapshot_follow_the_key(
    review, manager, publish, environment
) -> None:
    old = review.key
    rows = rows_of(old).count()
    profiles = ClientProfile.objects.filter(segment_identity=review.identity).count()
    assert rows == 1
    assert profiles > 0

    preview = manager.post(
        ACTION, {"action": "rename", "segment": old, "key": "tablets", "label": "Tablets"}
    )
    assert preview.status_code == 200
    said = preview.content.decode()
    assert "the plans that name it and its stored profiles stay as they are" in said
    assert rows_of(old).count() == 1  # the preview changed nothing

    response = _confirmed(
        manager, publish, action="rename", segment=old, key="tablets", label="Tablets"
    )

    assert response.status_code == 303
    review.refresh_from_db()
    assert (review.key, review.label) == ("tablets", "Tablets")
    assert not rows_of(old).exists()
    assert rows_of("tablets").count() == rows
    assert ClientProfile.objects.filter(segment_identity=review.identity).count() == profiles
    assert profiles_of("tablets").count() == profiles
    assert not profiles_of(old).exists()
    entry = AuditEntry.objects.get(action="segment.rename")
    assert (entry.segment, entry.before["key"], entry.after["key"]) == (old, old, "tablets")
    model = _latest_document(environment)["capabilityModel"]
    assert model["keys"][model["identities"].index(review.identity)] == "tablets"
    assert old not in model["keys"]
    rollout = _latest_document(environment)["flags"][0]["ladder"]["rollout"]["segments"]
    assert "tablets" in rollout
    assert old not in rollout


def test_rename__label_only__key_and_rollouts_stay(review, manager, publish) -> None:
    response = _confirmed(manager, publish, action="rename", segment=review.key, label="Phablets")

    assert response.status_code == 303
    review.refresh_from_db()
    assert review.label == "Phablets"
    assert rows_of(review.key).count() == 1


def test_rename__plan_lists__stored_by_identity_read_with_the_new_key(
    review, manager, publish
) -> None:
    from rollout.models import RolloutPlan
    from rollout.rollouts import plan_segments_from_keys
    from rollout.selectors import plan_segment_keys

    plan = RolloutPlan.objects.get()
    excluded = plan_segments_from_keys([review.key], "excludedSegments")
    RolloutPlan.objects.filter(pk=plan.pk).update(excluded_segments=excluded)

    _confirmed(manager, publish, action="rename", segment=review.key, key="tablets")

    plan.refresh_from_db()
    assert plan.excluded_segments == [review.identity]  # the rename did not touch the plan
    assert plan_segment_keys(plan.excluded_segments) == ["tablets"]
    assert not plan.covers(review.identity)


def test_merge__confirmed__merged_identity_serves_the_target_key(
    segmented, review, manager, publish, environment
) -> None:
    target = segmented[0]
    moved = list(profiles_of(review.key).exclude(save_data=True)[:50])
    sizes = target.size + review.size

    response = _confirmed(manager, publish, action="merge", segment=review.key, into=target.key)

    assert response.status_code == 303
    review.refresh_from_db()
    target.refresh_from_db()
    assert review.status == CapabilitySegment.Status.RETIRED
    assert review.merged_into_id == target.pk
    assert (review.size, target.size) == (0, sizes)
    assert rows_of(review.key).count() == 1  # left as it was
    document = _latest_document(environment)
    model = document["capabilityModel"]
    assert model["keys"][model["identities"].index(review.identity)] == target.key
    assert review.key not in model["keys"]
    snapshot = snapshot_from_document(document)
    assert {resolve_segment(snapshot, p.attributes()) for p in moved} == {target.key}
    assert profiles_of(target.key).filter(pk__in=[p.pk for p in moved]).count() == len(moved)
    entry = AuditEntry.objects.get(action="segment.merge")
    assert (entry.segment, entry.after["mergedInto"], entry.after["status"]) == (
        review.key,
        target.key,
        "retired",
    )
    body = manager.get(PAGE).content.decode()
    assert f"merged into {target.key}" in body
    assert "Retired segments (1)" in body


def test_merge__next_segmentation__stays_merged_and_renames_stay(
    segmented, review, manager, publish
) -> None:
    target, renamed = segmented[0], segmented[1]
    _confirmed(manager, publish, action="merge", segment=review.key, into=target.key)
    _confirmed(manager, publish, action="rename", segment=renamed.key, key="big-laptops")

    run = publish(lambda: segmentation_run(trigger="test", seed=4))

    review.refresh_from_db()
    assert review.status == CapabilitySegment.Status.RETIRED
    assert review.size == 0
    assert not ClientProfile.objects.filter(segment_identity=review.identity).exists()
    assert run.sizes.get(review.key, 0) == 0
    assert profiles_of("big-laptops").exists()
    assert "big-laptops" in run.sizes
    assert renamed.key not in run.sizes
    # The share history follows the renamed segment back to the runs before the rename.
    body = manager.get(PAGE).content.decode()
    assert "Share of big-laptops over 3 run(s)" in body


# Bad input


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"action": "accept", "segment": "no-such-segment"}, "segment", "unknown segment"),
        ({"action": "launch", "segment": "x"}, "action", "must be one of accept, rename, merge"),
        ({"action": "rename", "segment": "<review>", "key": "Bad Key!"}, "key", "must be a slug"),
        ({"action": "rename", "segment": "<review>", "key": "save-data"}, "key", "reserved"),
        ({"action": "rename", "segment": "<review>", "key": "<largest>"}, "key", "is taken"),
        ({"action": "rename", "segment": "<review>"}, "key", "give a new key or a new label"),
        ({"action": "rename", "segment": "<review>", "key": "a" * 64}, "key", "at most 63"),
        ({"action": "merge", "segment": "<review>", "into": "<review>"}, "into", "itself"),
        ({"action": "merge", "segment": "<review>", "into": "nope"}, "into", "unknown segment"),
        ({"action": "merge", "segment": "<review>"}, "into", "required"),
        ({"action": "merge", "segment": "<review>", "into": "<merged>"}, "into", "itself merged"),
        ({"action": "accept", "segment": "<largest>"}, "segment", "not waiting for review"),
    ],
)
@pytest.mark.parametrize("confirmed", [False, True])
def test_segment_action__bad_input__400_naming_the_field(
    segmented, review, manager, publish, data, field, says, confirmed
) -> None:
    largest, second = segmented[0], segmented[1]
    if "<merged>" in data.values():
        _confirmed(manager, publish, action="merge", segment=second.key, into=largest.key)
    names = {"<review>": review.key, "<largest>": largest.key, "<merged>": second.key}
    data = {name: names.get(value, value) for name, value in data.items()}
    if confirmed:
        data["confirmed"] = "yes"
    audits = AuditEntry.objects.count()

    response = manager.post(ACTION, data)

    assert response.status_code == 400
    body = response.content.decode()
    assert f"<strong>{field}</strong>" in body
    assert says in body
    assert 'role="alert"' in body
    assert AuditEntry.objects.count() == audits
    review.refresh_from_db()
    assert review.status == CapabilitySegment.Status.REVIEW


def test_merge__into_a_segment_others_were_merged_into__they_move_on(
    segmented, review, manager, publish
) -> None:
    first, second = segmented[0], segmented[1]
    _confirmed(manager, publish, action="merge", segment=review.key, into=second.key)

    _confirmed(manager, publish, action="merge", segment=second.key, into=first.key)

    review.refresh_from_db()
    assert review.merged_into_id == first.pk  # a merge target is never itself merged


def test_segment_action__get__not_allowed(manager) -> None:
    assert manager.get(ACTION).status_code == 405


# Reach per rung


def test_segments_page__next_run__each_segment_shows_what_its_clients_can_run(
    segmented, viewer, publish
) -> None:
    publish(lambda: segmentation_run(trigger="test", seed=3))  # the ladder exists now
    segments = [s for s in CapabilitySegment.objects.all() if s.size]

    body = viewer.get(PAGE).content.decode()

    counted = 0
    for segment in segments:
        card = body.split(f'id="segment-{segment.key}"')[1].split("</article>")[0]
        assert "Reach per rung" in card
        assert '<svg class="seg-reach"' in card
        assert "<title>smart-compose: edge " in card
        pairs = dict(segment.reach["flags"]["smart-compose"])
        assert list(pairs) == ["edge", "cloud", "lite", "off"]  # the ladder's order
        share = pairs["edge"] / segment.reach["clients"] * 100
        assert f"edge {share:.0f} % · cloud " in card
        counted += segment.reach["clients"]
    # Every sampled client is counted once, in the segment its profile is served (save-data
    # clients are in none of the learned segments).
    saving = ClientProfile.objects.filter(save_data=True).count()
    assert counted == segments[0].reach["sampled"] - saving == 1000 - saving
    # The fleet is mixed: somewhere edge is out of reach, somewhere it is everyone's.
    edge_shares = [
        dict(s.reach["flags"]["smart-compose"])["edge"] / s.reach["clients"] for s in segments
    ]
    assert min(edge_shares) < 0.5 < max(edge_shares)


def test_ladder_change__reach_recounted_on_the_worker(segmented, viewer, publish, monkeypatch):
    from rollout.tasks import refresh_segment_reach

    publish(lambda: segmentation_run(trigger="test", seed=3))
    # The worker's part run here: the task as a worker would run it, without a broker.
    monkeypatch.setattr(refresh_segment_reach, "delay", lambda: refresh_segment_reach.apply().get())
    flag = FlagState.objects.get(flag__key="smart-compose").flag
    demanding = [dict(rung) for rung in LADDER]
    demanding[0]["requirements"] = [
        {"contextName": "memoryGb", "operator": "NUM_GTE", "value": "64"}
    ]

    publish(lambda: flag_ladder_set(flag=flag, rungs=demanding, baseline="lite"))

    for segment in CapabilitySegment.objects.exclude(reach={}):
        assert dict(segment.reach["flags"]["smart-compose"])["edge"] == 0  # nobody has 64 GB
    body = viewer.get(PAGE).content.decode()
    assert "edge 0 % · cloud 100 %" in body
