"""Argo CD sync metrics (insight/argosync.py): durations, percentiles, the window, the last phase."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from dex_tasks import proc
from dex_tasks.config import ClusterConfig, Config
from dex_tasks.insight import argosync
from dex_tasks.tools import argocd
from tests.fakes.argocd_state import revision_history

UNTIL = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
SINCE = UNTIL - dt.timedelta(days=30)


def _at(days_ago: float, plus_s: float = 0) -> str:
    return (UNTIL - dt.timedelta(days=days_ago) + dt.timedelta(seconds=plus_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sync(ident: int, days_ago: float, seconds: float | None, **kwargs: Any) -> dict[str, Any]:
    started = None if seconds is None else _at(days_ago, -seconds)
    return revision_history(ident, f"{ident:040x}", started=started, deployed=_at(days_ago), **kwargs)


def _app(history: list[dict[str, Any]], *, phase: str = "Succeeded", finished: str | None = None,
         limit: int | None = None) -> argocd.App:  # fmt: skip
    operation: dict[str, Any] = {"phase": phase, "startedAt": finished or _at(1), "message": "m"}
    if finished:
        operation["finishedAt"] = finished
    spec: dict[str, Any] = {"destination": {"namespace": "dex-dev"}}
    if limit is not None:
        spec["revisionHistoryLimit"] = limit
    return argocd.App.from_json(
        {"metadata": {"name": "dex-dev"}, "spec": spec,
         "status": {"history": history, "operationState": operation}}
    )  # fmt: skip


def _summary(app: argocd.App, target_s: float = 30) -> dict[str, Any]:
    return argosync.summarize(app, since=SINCE, until=UNTIL, target_s=target_s)


def test_history_entry_parses_the_revision_history_fields() -> None:
    app = _app([_sync(0, 2, 14, automated=True), _sync(1, 1, None, user="alice")])
    first, second = app.history
    assert (first.id, first.deploy_started_at, first.automated, first.initiated_by) == (
        0,
        _at(2, -14),
        True,
        "",
    )
    assert (second.id, second.deploy_started_at, second.initiated_by) == (1, "", "alice")
    assert app.operation_started_at == _at(1)
    assert app.history_limit is None


def test_sync_seconds() -> None:
    assert argosync.sync_seconds(_app([_sync(0, 1, 17)]).history[0]) == 17
    # Older Argo CD (before 1.7) has no deployStartedAt: no duration, never 0.
    assert argosync.sync_seconds(_app([_sync(0, 1, None)]).history[0]) is None
    # Start after end (clock skew between controller processes): no duration, never negative.
    assert argosync.sync_seconds(_app([_sync(0, 1, -5)]).history[0]) is None
    garbage = argocd.HistoryEntry(id=1, revision="", deployed_at="yesterday", deploy_started_at=_at(1))
    assert argosync.sync_seconds(garbage) is None


def test_percentiles_and_target() -> None:
    seconds = [10, 12, 14, 20, 25, 28, 29, 40]
    app = _app([_sync(i, 20 - i, s) for i, s in enumerate(seconds)])
    summary = _summary(app)
    assert (summary["syncs"], summary["with_duration"], summary["without_duration"]) == (8, 8, 0)
    # Nearest rank: p50 = 4th of 8 (20), p90 = ceil(7.2) = 8th (40).
    assert (summary["p50_s"], summary["p90_s"]) == (20, 40)
    assert summary["met"] is False
    assert _summary(app, target_s=40)["met"] is True
    assert (summary["failed"], summary["success_rate"], summary["last_phase"]) == (0, 1.0, "Succeeded")
    assert summary["complete"] is True  # 8 < 10 entries: Argo CD dropped none


def test_entries_without_a_start_or_with_skew_count_as_syncs_but_not_in_the_percentiles() -> None:
    app = _app([_sync(0, 5, None), _sync(1, 4, -3), _sync(2, 3, 50), _sync(3, 2, 10)])
    summary = _summary(app)
    assert (summary["syncs"], summary["with_duration"], summary["without_duration"]) == (4, 2, 2)
    assert (summary["p50_s"], summary["p90_s"]) == (10, 50)


def test_empty_history() -> None:
    summary = _summary(_app([]))
    assert (summary["syncs"], summary["p50_s"], summary["p90_s"], summary["met"]) == (0, None, None, None)
    assert (summary["success_rate"], summary["oldest_at"], summary["complete"]) == (None, None, True)
    assert summary["history_limit"] == argosync.DEFAULT_HISTORY_LIMIT


def test_only_syncs_in_the_window_count() -> None:
    app = _app([_sync(0, 45, 99), _sync(1, 31, 99), _sync(2, 10, 5)])
    summary = _summary(app)
    assert (summary["syncs"], summary["p90_s"], summary["history"]) == (1, 5, 3)
    # The oldest entry is older than the window: the window is fully covered.
    assert summary["complete"] is True
    assert summary["oldest_at"] == _at(45)


def test_a_full_history_that_starts_inside_the_window_is_incomplete() -> None:
    full = [_sync(i, 10 - i / 2, 8) for i in range(10)]
    summary = _summary(_app(full))
    assert (summary["syncs"], summary["history"], summary["complete"]) == (10, 10, False)
    # The same ten entries with a larger revisionHistoryLimit: Argo CD dropped nothing.
    assert _summary(_app(full, limit=20))["complete"] is True
    # A limit of 3 and three entries, the oldest inside the window: older ones may be gone.
    short = _summary(_app(full[-3:], limit=3))
    assert (short["history_limit"], short["complete"]) == (3, False)
    # Full, but the oldest entry predates the window: every sync of the window is there.
    assert _summary(_app([_sync(0, 40, 8), *full[1:]]))["complete"] is True


@pytest.mark.parametrize(
    ("phase", "finished_days_ago", "failed"),
    [("Failed", 1, 1), ("Error", 1, 1), ("Failed", 40, 0), ("Running", None, 0), ("Succeeded", 1, 0)],
)
def test_the_last_operation_phase(phase: str, finished_days_ago: float | None, failed: int) -> None:
    finished = None if finished_days_ago is None else _at(finished_days_ago)
    summary = _summary(_app([_sync(0, 3, 10), _sync(1, 2, 12)], phase=phase, finished=finished))
    assert (summary["last_phase"], summary["failed"]) == (phase, failed)
    # A failed sync leaves no history entry: the rate is over the syncs Argo CD still records.
    assert summary["success_rate"] == round(2 / (2 + failed), 4)
    assert summary["syncs"] == 2
    if finished is None:  # still running: the start time is the one there is
        assert summary["last_at"] == _at(1)


def test_not_configured_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config()
    monkeypatch.setattr(proc, "which", lambda tool: f"/usr/bin/{tool}")
    assert argosync.not_configured_reason(cfg, ["dev"], {}) == "ARGOCD_SERVER is not set"
    assert argosync.not_configured_reason(cfg, ["dev"], {"ARGOCD_SERVER": "argocd.example"}) is None
    monkeypatch.setattr(proc, "which", lambda _tool: None)
    reason = argosync.not_configured_reason(cfg, ["dev"], {"ARGOCD_SERVER": "argocd.example"})
    assert reason == "argocd is not on PATH and ARGOCD_AUTH_TOKEN is not set (for the REST API)"
    both = {"ARGOCD_SERVER": "argocd.example", "ARGOCD_AUTH_TOKEN": "t"}
    assert argosync.not_configured_reason(cfg, ["dev"], both) is None
    # No ARGOCD_SERVER, but an env has its own server: configured (for that env).
    monkeypatch.setattr(proc, "which", lambda tool: f"/usr/bin/{tool}")
    per_env = dataclasses.replace(
        Config(), cluster=ClusterConfig(argocd_servers={"prod": "argocd.prod.example"})
    )
    assert argosync.not_configured_reason(per_env, ["dev", "prod"], {}) is None
    assert argosync.not_configured_reason(per_env, ["dev"], {}) == "ARGOCD_SERVER is not set"


ODD_VALUES: list[Any] = [None, "x", 5, True, 1.5, [], [1], {}, "2026-99-99T00:00:00Z"]
ODD_PATHS = [
    ("metadata",), ("spec",), ("spec", "revisionHistoryLimit"), ("status",), ("status", "sync"),
    ("status", "summary"), ("status", "operationState"), ("status", "operationState", "syncResult"),
    ("status", "operationState", "operation"), ("status", "operationState", "finishedAt"),
    ("status", "history"), ("status", "history", 0), ("status", "history", 0, "id"),
    ("status", "history", 0, "deployedAt"), ("status", "history", 0, "deployStartedAt"),
    ("status", "history", 0, "initiatedBy"),
]  # fmt: skip


@pytest.mark.parametrize("path", ODD_PATHS, ids=lambda p: "/".join(map(str, p)))
def test_an_app_document_with_odd_fields_is_summarized_not_a_traceback(path: tuple[Any, ...]) -> None:
    # history null or a number, ids as strings, times that are not times: read as absent.
    for value in ODD_VALUES:
        data: dict[str, Any] = {
            "metadata": {"name": "dex-prod"}, "spec": {"revisionHistoryLimit": 10},
            "status": {"sync": {"status": "Synced"}, "summary": {"images": ["a:b"]},
                       "operationState": {"phase": "Failed", "finishedAt": _at(1),
                                          "syncResult": {"revision": "r"}, "operation": {"sync": {}}},
                       "history": [_sync(1, 2, 30)]},
        }  # fmt: skip
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        app = argocd.App.from_json(data)
        metrics = argosync.summarize(app, since=SINCE, until=UNTIL, target_s=60)
        assert metrics["syncs"] in {0, 1}
        assert all(isinstance(entry.id, int) for entry in app.history)
