"""Pipeline metrics against the fake GitHub: paging, the 1,000-run cap, timing, pass rate, targets."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from dex_tasks.config import MetricsConfig, MetricsTargets
from dex_tasks.insight import pipeline
from dex_tasks.tools.github import GitHub
from tests.fakes.github_api import FakeGitHub

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(120)
UNTIL = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
SINCE = UNTIL - dt.timedelta(days=30)


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def out(self, text: str = "") -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.lines.append(f"warning: {text}")


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghs_pipeline_unit_token", repo="o/r") as server:
        yield server


def _client(fake: FakeGitHub) -> GitHub:
    return GitHub(
        repo="o/r", token="ghs_pipeline_unit_token", api_url=fake.url, backoff_factor=0, sleep=lambda _: None
    )


def _at(minutes: int) -> str:
    return (SINCE + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_more_runs_than_the_api_cap_are_all_seen(fake: FakeGitHub) -> None:
    for i in range(1250):
        fake.add_run("ci.yml", _at(30 * i + 1), "success" if i % 10 else "failure", seconds=60 + i % 100)
    fake.add_run("ci.yml", _at(-60))  # before the window
    with _client(fake) as client:
        runs = pipeline.fetch_runs(client, "ci.yml", SINCE, UNTIL)
    assert len(runs) == 1250
    assert len({r["id"] for r in runs}) == 1250
    queries = fake.requests_to("GET", "/repos/o/r/actions/workflows/ci.yml/runs")
    assert all(int(r.query["page"]) <= 10 for r in queries)  # never past the cap
    assert len(queries) < 40


def test_summary_pass_rate_percentiles_and_targets(fake: FakeGitHub) -> None:
    for i, conclusion in enumerate(["success"] * 9 + ["failure", "cancelled", "skipped"]):
        fake.add_run("ci.yml", _at(i + 1), conclusion, seconds=10 * (i + 1))
    fake.add_run("ci.yml", _at(20), None, status="in_progress")
    fake.add_run("ci.yml", _at(21), "success", seconds=500, started=False)  # timing endpoint
    fake.add_run("cd.yml", _at(5), "success", seconds=100)
    cfg = MetricsConfig(targets=MetricsTargets(ci_seconds=100, ci_pass_rate=0.9))
    with _client(fake) as client:
        result = pipeline.metrics(_Report(), client, cfg, SINCE, UNTIL)
    ci = result["ci"]
    assert ci["runs"] == 11  # 10 successes, 1 failure; cancelled, skipped, in progress left out
    assert ci["pass_rate"] == round(10 / 11, 4)
    assert (ci["p50_s"], ci["p90_s"]) == (50, 90)  # 10..90 and 500: nearest rank
    assert (ci["met_duration"], ci["met_pass_rate"], ci["met"]) == (True, True, True)
    assert len(fake.requests_to("GET", "/repos/o/r/actions/runs/*/timing")) == 1
    assert result["cd"] | {"workflow": ""} == {
        "runs": 1, "pass_rate": 1.0, "p50_s": 100, "p90_s": 100, "target_s": 180, "target_pass_rate": 0.99,
        "met": True, "met_duration": True, "met_pass_rate": True, "workflow": "",
    }  # fmt: skip


def test_a_missing_workflow_is_a_warning(fake: FakeGitHub) -> None:
    report = _Report()
    with _client(fake) as client:
        result = pipeline.metrics(report, client, MetricsConfig(), SINCE, UNTIL)
    assert result["ci"]["runs"] == 0
    assert result["ci"]["met"] is None
    assert "404" in result["ci"]["error"]
    assert any("pipeline metrics of ci.yml not available" in line for line in report.lines)
