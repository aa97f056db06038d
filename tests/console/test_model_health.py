"""The model health page: per segment × rung × version metrics, the cost ledger against the
flag's cloud price, charts, and the CSV export, over the demo's 72 hours of telemetry."""

from __future__ import annotations

import csv
import io

import pytest
from django.db.models import Sum

from console.model_health import CSV_COLUMNS
from rollout.histogram import INFERENCE_BINS, percentile
from rollout.models import MetricBucket, RetrainingRequest
from rollout.selectors import segment_keys
from tests.support.demo import load_demo

pytestmark = pytest.mark.django_db

PAGE = "/admin/console/models/smart-compose"


@pytest.fixture
def demo(publish) -> None:
    load_demo(publish)


def _rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_csv__one_row_per_segment_rung_version_with_the_databases_numbers(demo, admin_client):
    response = admin_client.get(f"{PAGE}?environment=staging&days=7&export=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = _rows(response)
    assert tuple(rows[0]) == CSV_COLUMNS
    v3 = [r for r in rows if r["model_version"] == "3.0.0"]
    assert len(v3) == 1  # ramped in one segment only
    row = v3[0]
    identity = {key: i for i, key in segment_keys().items()}[row["segment"]]
    sums = MetricBucket.objects.filter(
        environment__key="staging", flag="smart-compose", segment_identity=identity,
        model_version="3.0.0",
    ).aggregate(
        *[Sum(n) for n in ("acceptance_sum", "acceptance_n", "inference_ms_n", "energy_sum",
                           "energy_n", "updates_delta", "updates_delta_failed",
                           "update_bytes_delta")],
        **{b: Sum(b) for b in INFERENCE_BINS},
    )  # fmt: skip
    assert float(row["acceptance_rate"]) == pytest.approx(
        sums["acceptance_sum__sum"] / sums["acceptance_n__sum"], rel=1e-5
    )
    assert int(row["inferences"]) == sums["inference_ms_n__sum"]
    assert float(row["inference_p95_ms"]) == pytest.approx(percentile(sums, 0.95), rel=1e-5)
    ok = sums["updates_delta__sum"] - sums["updates_delta_failed__sum"]
    assert float(row["delta_success_rate"]) == pytest.approx(ok / sums["updates_delta__sum"])
    v2 = next(r for r in rows if r["segment"] == row["segment"] and r["model_version"] == "2.0.0")
    # v3 is the frugal one: less energy per inference than v2 on the same devices.
    assert float(row["energy_mj_per_inference"]) < float(v2["energy_mj_per_inference"])
    # On-device inferences priced at the flag's 0.40 per 1,000; the cloud rung's cost too.
    assert float(row["cloud_cost_avoided"]) == pytest.approx(
        sums["inference_ms_n__sum"] / 1000 * 0.40, rel=1e-5
    )
    cloud = [r for r in rows if r["rung"] == "cloud"]
    assert cloud
    assert all(r["cloud_cost"] and not r["cloud_cost_avoided"] for r in cloud)


def test_page__table_ledger_charts_and_the_retraining_notice(demo, admin_client) -> None:
    page = admin_client.get(f"{PAGE}?environment=staging").content.decode()
    flag_page = admin_client.get(
        "/admin/console/flags/smart-compose?environment=staging"
    ).content.decode()

    assert 'data-model="3.0.0"' in page
    assert 'data-model="2.0.0"' in page
    assert "on-device inferences did not go to the cloud" in page
    assert page.count('<svg class="chart"') == 3  # acceptance, energy, the ledger
    assert "Export CSV" in page
    request = RetrainingRequest.objects.get(environment__key="staging")
    assert request.model_version == "3.0.0"
    assert request.metric == "acceptance"
    assert "Retraining requested" in flag_page
    assert request.segment_key in flag_page
    assert "Model health, cost ledger and CSV" in flag_page


def test_page__unknown_flag_404_and_bad_days_fall_back(demo, admin_client) -> None:
    assert admin_client.get("/admin/console/models/nope").status_code == 404
    fallback = admin_client.get(f"{PAGE}?days=abc").content.decode()
    assert "last 7 days" in fallback


def test_page__a_bounded_number_of_queries(demo, admin_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        admin_client.get(f"{PAGE}?environment=staging")
