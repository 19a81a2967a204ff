"""Pipeline metrics from GitHub Actions: pass rate and p50/p90 duration of the CI and CD workflows.

Runs come from ``GET /repos/{o}/{r}/actions/workflows/{file}/runs?created=START..END``, 100 a page.
GitHub answers a filtered listing with at most 1,000 runs (``total_count`` still says how many
match), so a range that holds more is split in halves until each half fits (bounded depth).

* **pass rate**: runs that concluded ``success`` / runs that concluded at all, leaving out
  ``cancelled``, ``skipped``, ``neutral`` and ``stale`` (superseded or not run: no verdict on the
  code). Runs still queued or in progress are not counted.
* **duration**: of successful runs (a failing run that stops early would make the pipeline look
  fast): ``run_started_at`` -> ``updated_at`` of the completed run (re-runs start a new attempt, so
  ``created_at`` would count the wait); when a run lacks them, ``GET .../runs/{id}/timing``'s
  ``run_duration_ms``. p50 and p90 are nearest-rank.
* **met**: p90 within the duration target and the pass rate at or above its target (CI against
  ``ci-seconds`` / ``ci-pass-rate``, CD against ``build-seconds`` / ``cd-success-rate``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from dex_tasks import durations
from dex_tasks.errors import DexError
from dex_tasks.insight.dora import percentile

if TYPE_CHECKING:
    from dex_tasks.config import MetricsConfig
    from dex_tasks.report import Reporter
    from dex_tasks.tools.github import GitHub

PER_PAGE = 100
API_CAP = 1000  # GitHub returns at most this many runs for one filtered query
MAX_SPLITS = 12  # 2**12 ranges of a 30-day window: ~10 minutes each, far beyond any repository
MAX_TIMING_CALLS = 200
NO_VERDICT = frozenset({"cancelled", "skipped", "neutral", "stale"})


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: object) -> dt.datetime | None:
    return durations.instant(text)  # GitHub's answer: an edge year is no time, not an OverflowError


# GitHub's answers are only as typed as the server that gave them (a proxy, an Enterprise version,
# a fake): an object that is not one, a count that is a string, reads as empty, never a traceback.
def _page(answer: Any) -> dict[str, Any]:
    return answer if isinstance(answer, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _runs(page: dict[str, Any]) -> list[Any]:
    runs = page.get("workflow_runs")
    return list(runs) if isinstance(runs, list) else []


def fetch_runs(client: GitHub, workflow: str, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    """Every run of ``workflow`` created in ``[since, until]``, each once."""
    runs: dict[int, dict[str, Any]] = {}
    ranges = [(since, until, 0)]
    while ranges:
        start, end, depth = ranges.pop()
        created = f"{_iso(start)}..{_iso(end)}"
        first = _page(client.workflow_runs(workflow, created=created, page=1, per_page=PER_PAGE))
        total = _count(first.get("total_count"))
        if total > API_CAP and depth < MAX_SPLITS and (end - start) > dt.timedelta(seconds=2):
            middle = start + (end - start) / 2
            ranges += [(start, middle, depth + 1), (middle + dt.timedelta(seconds=1), end, depth + 1)]
            continue
        pages = -(-min(total, API_CAP) // PER_PAGE)
        batch = _runs(first)
        for page in range(2, pages + 1):
            more = _page(client.workflow_runs(workflow, created=created, page=page, per_page=PER_PAGE))
            items = _runs(more)
            if not items:
                break
            batch += items
        for run in batch:
            if isinstance(run, dict) and isinstance(run.get("id"), int):
                runs[run["id"]] = run
    return sorted(runs.values(), key=lambda r: str(r.get("created_at") or ""))


def duration_s(client: GitHub | None, run: dict[str, Any], budget: list[int]) -> float | None:
    started, updated = _parse(run.get("run_started_at")), _parse(run.get("updated_at"))
    if started and updated and updated >= started:
        return (updated - started).total_seconds()
    if client is None or budget[0] <= 0:
        return None
    budget[0] -= 1
    ms = _page(client.run_timing(int(run["id"]))).get("run_duration_ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms < math.inf:
        return None  # true, "12", NaN or a negative time is no duration
    return ms / 1000


def summarize(
    runs: list[dict[str, Any]], *, target_s: float, target_pass_rate: float, client: GitHub | None = None
) -> dict[str, Any]:
    completed = [r for r in runs if r.get("status") == "completed" and r.get("conclusion") not in NO_VERDICT]
    passed = [r for r in completed if r.get("conclusion") == "success"]
    budget = [MAX_TIMING_CALLS]
    durations = [d for r in passed if (d := duration_s(client, r, budget)) is not None]
    pass_rate = round(len(passed) / len(completed), 4) if completed else None
    p50, p90 = percentile(durations, 50), percentile(durations, 90)
    met_time = p90 <= target_s if p90 is not None else None
    met_rate = pass_rate >= target_pass_rate if pass_rate is not None else None
    return {
        "runs": len(completed),
        "pass_rate": pass_rate,
        "p50_s": p50,
        "p90_s": p90,
        "target_s": target_s,
        "target_pass_rate": target_pass_rate,
        "met": bool(met_time and met_rate) if completed else None,
        "met_duration": met_time,
        "met_pass_rate": met_rate,
    }


def metrics(
    report: Reporter, client: GitHub, cfg: MetricsConfig, since: dt.datetime, until: dt.datetime
) -> dict[str, Any]:
    """``{"ci": {...}, "cd": {...}}`` for the configured workflows; an API failure is a warning."""
    targets = cfg.targets
    wanted = {
        "ci": (targets.ci_seconds, targets.ci_pass_rate),
        "cd": (targets.build_seconds, targets.cd_success_rate),
    }
    result: dict[str, Any] = {}
    for name, (target_s, target_rate) in wanted.items():
        workflow = cfg.workflows.get(name)
        if not workflow:
            continue
        try:
            runs = fetch_runs(client, workflow, since, until)
            entry = summarize(runs, target_s=target_s, target_pass_rate=target_rate, client=client)
        except DexError as exc:
            report.warn(f"pipeline metrics of {workflow} not available: {exc}")
            entry = summarize([], target_s=target_s, target_pass_rate=target_rate) | {"error": str(exc)}
        result[name] = entry | {"workflow": workflow}
    return result
