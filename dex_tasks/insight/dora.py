"""DORA's four keys for one environment, from its deployment history in git. Pure: no I/O.

Input: the env's deployments (history entries: ``tag, commit, date, action`` and, for rollbacks,
the tag they moved away from) and the app's commit graph (commit -> time, parents). Definitions,
after Google's Four Keys (github.com/dora-team/fourkeys) and argoproj-labs/gitops-promoter#574:

* **Deployment frequency**: overlay commits that changed the env's tag inside the window
  (rollbacks included: they are deployments too), and that count per day of the window.
* **Lead time for changes**: for every app commit, the time from the commit (its committer
  date: when it landed) to the first deployment of this env whose image contains it, i.e. whose
  ``sha-<hex>`` tag's commit reaches it. The median over the commits first deployed inside the
  window. Commits dex-tasks made (a ``Dex-Action`` trailer) are not changes and have no lead
  time. The env's first recorded deployment is the baseline: what it brought was there before
  the history starts, so its commits have no lead time. Tags that are not ``sha-`` tags, or whose
  commit is not in the graph, bring no commits.
* **Change failure rate**: failed deployments / deployments that were not rollbacks, both inside
  the window. A deployment failed when a later rollback undid it (a rollback to tag T undoes every
  deployment made since T last went live), or when its ``verify`` failed (GitHub deployment
  statuses, when available). Each deployment counts once however many rollbacks undo it, and the
  failures are a subset of the denominator, so the rate is never above 1 (the trap of
  apache/incubator-devlake#4610, where incidents and deployments were counted apart).
* **Time to restore**: for each failed deployment in the window, the time to the next deployment
  that did not fail (its rollback, or the next good deployment, whichever came first). The
  median; failures not restored yet are counted in ``unrestored`` and not in the median.

Percentiles are nearest-rank (the value at rank ceil(p/100 * n)), so they are always a real
observation.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import TYPE_CHECKING, Any

from dex_tasks import durations

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Mapping, Sequence

ROLLBACK = "rollback"
SHA_PREFIX = "sha-"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty); ``p`` in (0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Deploy:
    tag: str
    commit: str
    at: dt.datetime
    rollback: bool


def from_history(entries: Iterable[Any]) -> list[Deploy]:
    """History entries (``tag, commit, date, action``; ``rolled_back_from`` when there) -> deploys."""
    deploys = []
    for entry in entries:
        at = durations.instant(str(entry.date))
        if at is None:  # a commit date git prints but no datetime holds (year 10000): not counted
            continue
        rollback = entry.action == ROLLBACK or getattr(entry, "rolled_back_from", None) is not None
        deploys.append(Deploy(tag=entry.tag, commit=entry.commit, at=at, rollback=rollback))
    return deploys


@dataclasses.dataclass
class Graph:
    """App commits: committer time (epoch seconds) and parents, with abbreviated-sha lookup."""

    times: dict[str, int]
    parents: dict[str, tuple[str, ...]]
    overlay: frozenset[str] = frozenset()  # commits dex-tasks made (Dex-Action): not changes to lead
    _sorted: list[str] = dataclasses.field(default_factory=list)

    def resolve(self, prefix: str) -> str | None:
        """The one commit whose sha starts with ``prefix`` (None: none, or ambiguous)."""
        if prefix in self.times:
            return prefix
        if not self._sorted:
            self._sorted = sorted(self.times)
        i = bisect.bisect_left(self._sorted, prefix)
        found = [s for s in self._sorted[i : i + 2] if s.startswith(prefix)]
        return found[0] if len(found) == 1 else None


GRAPH_FORMAT = "--format=%H %ct %P%x1f%(trailers:key=Dex-Action,valueonly,separator=%x2C)"


def parse_graph(text: str) -> Graph:
    """``git log`` output in :data:`GRAPH_FORMAT` (or plain ``%H %ct %P``) -> Graph."""
    times: dict[str, int] = {}
    parents: dict[str, tuple[str, ...]] = {}
    overlay: set[str] = set()
    for line in text.splitlines():
        fields, _, action = line.partition("\x1f")
        parts = fields.split()
        if len(parts) >= 2 and parts[1].isdigit():
            times[parts[0]] = int(parts[1])
            parents[parts[0]] = tuple(parts[2:])
            if action.strip():
                overlay.add(parts[0])
    return Graph(times=times, parents=parents, overlay=frozenset(overlay))


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvMetrics:
    deployments: int
    per_day: float
    lead_time_p50_s: float | None
    lead_time_commits: int
    change_failure_rate: float | None
    failures: int
    time_to_restore_p50_s: float | None
    unrestored: int

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _failed(deploys: Sequence[Deploy], failed_commits: frozenset[str]) -> set[int]:
    """Indices (oldest first) of the deployments a later rollback undid, or whose verify failed."""
    failed = {i for i, d in enumerate(deploys) if not d.rollback and d.commit in failed_commits}
    live: list[int] = []  # the stack of what went live, newest last
    for i, deploy in enumerate(deploys):
        if deploy.rollback:
            # Undo back to where the rollback's tag last went live; not found: the one before it.
            back = next((k for k in range(len(live) - 1, -1, -1) if deploys[live[k]].tag == deploy.tag), None)
            undone = live[back + 1 :] if back is not None else live[-1:]
            del live[len(live) - len(undone) :]
            failed.update(k for k in undone if not deploys[k].rollback)
        live.append(i)
    return failed


def _lead_times(
    deploys: Sequence[Deploy], graph: Graph, since: dt.datetime, until: dt.datetime
) -> list[float]:
    seen: set[str] = set()
    result: list[float] = []
    baseline = True
    for deploy in deploys:
        if not deploy.tag.startswith(SHA_PREFIX):
            continue
        head = graph.resolve(deploy.tag[len(SHA_PREFIX) :])
        if head is None:
            continue
        counted = not baseline and since <= deploy.at <= until
        baseline = False
        at = deploy.at.timestamp()
        stack = [head] if head not in seen else []
        seen.add(head)
        while stack:  # every commit is visited once per env: O(commits) over the whole history
            commit = stack.pop()
            if counted and commit not in graph.overlay:
                result.append(max(0.0, at - graph.times[commit]))
            for parent in graph.parents.get(commit, ()):
                if parent in graph.times and parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return result


def env_metrics(
    entries: Iterable[Deploy],
    graph: Graph,
    *,
    since: dt.datetime,
    until: dt.datetime,
    failed_commits: Iterable[str] = (),
) -> EnvMetrics:
    """The four keys of one env over ``[since, until]``; ``entries`` newest first, as history has them."""
    # Oldest first. sorted() is stable, so reversing first keeps same-second commits in git's
    # order (ruff's C415 assumes the order of ties does not matter; here it does).
    deploys = sorted(list(entries)[::-1], key=lambda d: d.at)  # noqa: C415
    failed = _failed(deploys, frozenset(failed_commits))
    window = [i for i, d in enumerate(deploys) if since <= d.at <= until]
    changes = [i for i in window if not deploys[i].rollback]
    failures = [i for i in changes if i in failed]
    restores: list[float] = []
    for i in failures:
        good = next((j for j in range(i + 1, len(deploys)) if j not in failed), None)
        if good is not None:
            restores.append((deploys[good].at - deploys[i].at).total_seconds())
    days = max((until - since).total_seconds() / 86400, 1 / 86400)
    leads = _lead_times(deploys, graph, since, until)
    return EnvMetrics(
        deployments=len(window),
        per_day=round(len(window) / days, 4),
        lead_time_p50_s=percentile(leads, 50),
        lead_time_commits=len(leads),
        change_failure_rate=round(len(failures) / len(changes), 4) if changes else None,
        failures=len(failures),
        time_to_restore_p50_s=percentile(restores, 50),
        unrestored=len(failures) - len(restores),
    )


def all_envs(
    by_env: Mapping[str, Iterable[Deploy]],
    graph: Graph,
    *,
    since: dt.datetime,
    until: dt.datetime,
    failed_commits: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, EnvMetrics]:
    failed_commits = failed_commits or {}
    return {
        env: env_metrics(d, graph, since=since, until=until, failed_commits=failed_commits.get(env, ()))
        for env, d in by_env.items()
    }
