"""DORA's four keys from deployment histories: each definition, and the rate never above 1."""

from __future__ import annotations

import datetime as dt
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from dex_tasks.insight import dora

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SINCE, UNTIL = T0, T0 + dt.timedelta(days=10)


def _graph(n: int) -> tuple[dora.Graph, list[str]]:
    """A linear history of ``n`` app commits, one an hour from T0 - 1 day."""
    shas = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(n)]  # noqa: S324 - ids, not security
    start = int((T0 - dt.timedelta(days=1)).timestamp())
    text = "\n".join(
        f"{sha} {start + 3600 * i} {shas[i - 1] if i else ''}".rstrip() for i, sha in enumerate(shas)
    )
    return dora.parse_graph(text), shas


def _d(tag: str, hours: float, *, rollback: bool = False, commit: str = "") -> dora.Deploy:
    return dora.Deploy(tag=tag, commit=commit or f"c-{tag}-{hours}", at=T0 + dt.timedelta(hours=hours),
                       rollback=rollback)  # fmt: skip


def _newest_first(*deploys: dora.Deploy) -> list[dora.Deploy]:
    return list(reversed(deploys))


def test_percentile_is_nearest_rank() -> None:
    assert dora.percentile([], 50) is None
    assert dora.percentile([3, 1, 2], 50) == 2
    assert dora.percentile([1, 2], 50) == 1
    assert dora.percentile(list(range(1, 11)), 90) == 9
    assert dora.percentile([5], 90) == 5


def test_frequency_failure_rate_and_restore() -> None:
    graph, _ = _graph(3)
    deploys = _newest_first(
        _d("sha-a", 1), _d("sha-b", 2), _d("sha-c", 3),
        _d("sha-b", 4, rollback=True),  # undoes c
        _d("sha-d", 10), _d("sha-a", 12, rollback=True),  # undoes d and b (a last went live at 1)
        _d("sha-e", 30),
    )  # fmt: skip
    m = dora.env_metrics(deploys, graph, since=SINCE, until=UNTIL)
    assert m.deployments == 7
    assert m.per_day == 0.7
    # Not rollbacks: a, b, c, d, e; undone: c (by the first), b and d (by the second): 3 of 5.
    assert (m.failures, m.change_failure_rate) == (3, 0.6)
    # c (3h) -> its rollback at 4h: 1h; b (2h) -> the next deployment that did not fail is that
    # rollback too (c failed): 2h; d (10h) -> the rollback at 12h: 2h.
    assert m.time_to_restore_p50_s == 7200
    assert m.unrestored == 0


def test_a_deployment_undone_twice_counts_once_and_rate_stays_at_most_one() -> None:
    graph, _ = _graph(1)
    deploys = _newest_first(
        _d("sha-a", 1), _d("sha-b", 2), _d("sha-a", 3, rollback=True), _d("sha-a", 4, rollback=True)
    )
    m = dora.env_metrics(deploys, graph, since=SINCE, until=UNTIL)
    assert (m.failures, m.change_failure_rate) == (1, 0.5)


def test_window_counts_only_what_happened_inside_it() -> None:
    graph, _ = _graph(1)
    deploys = _newest_first(_d("sha-a", -48), _d("sha-b", -24), _d("sha-a", 1, rollback=True))
    m = dora.env_metrics(deploys, graph, since=SINCE, until=UNTIL)
    # b was deployed before the window: its failure is not this window's (nor the denominator's).
    assert (m.deployments, m.failures, m.change_failure_rate) == (1, 0, None)


def test_failed_verify_counts_and_unrestored_failures() -> None:
    graph, _ = _graph(1)
    deploys = _newest_first(_d("sha-a", 1), _d("sha-b", 2, commit="overlay-b"))
    m = dora.env_metrics(deploys, graph, since=SINCE, until=UNTIL, failed_commits={"overlay-b"})
    assert (m.failures, m.change_failure_rate, m.unrestored, m.time_to_restore_p50_s) == (1, 0.5, 1, None)


def test_lead_time_to_the_first_deployment_containing_each_commit() -> None:
    graph, shas = _graph(6)  # commits at T0-24h, -23h, ..., -19h
    deploys = _newest_first(
        _d(f"sha-{shas[1][:8]}", -20),  # baseline: brings commits 0 and 1, no lead time
        _d(f"sha-{shas[3][:8]}", 1),  # commits 2 (-22h) and 3 (-21h): 23h and 22h
        _d(f"sha-{shas[1][:8]}", 2, rollback=True),  # brings nothing new
        _d(f"sha-{shas[5][:8]}", 5),  # 4 and 5 (-20h, -19h): 25h, 24h
        _d("pr-12", 6),  # not a sha tag: no commits
        _d("sha-ffffffff", 7),  # not in the graph
    )
    m = dora.env_metrics(deploys, graph, since=SINCE, until=UNTIL)
    assert m.lead_time_commits == 4
    assert m.lead_time_p50_s == 23 * 3600


def test_graph_resolves_abbreviated_shas() -> None:
    graph = dora.parse_graph("abc1230000 1 \nabc1240000 2 abc1230000\n")
    assert graph.resolve("abc123") == "abc1230000"
    assert graph.resolve("abc12") is None  # ambiguous
    assert graph.resolve("fff") is None


@st.composite
def histories(draw: st.DrawFn) -> list[dora.Deploy]:
    tags = ["sha-a", "sha-b", "sha-c", "sha-d"]
    n = draw(st.integers(min_value=0, max_value=30))
    return [
        _d(draw(st.sampled_from(tags)), hours=draw(st.integers(-100, 300)), rollback=draw(st.booleans()))
        for _ in range(n)
    ]


@given(histories(), st.sets(st.sampled_from(["c-sha-a-1", "c-sha-b-2"])))
def test_properties(history: list[dora.Deploy], failed: set[str]) -> None:
    graph, _ = _graph(2)
    m = dora.env_metrics(history, graph, since=SINCE, until=UNTIL, failed_commits=failed)
    in_window = [d for d in history if SINCE <= d.at <= UNTIL]
    assert m.deployments == len(in_window)
    assert m.failures <= len([d for d in in_window if not d.rollback])
    assert m.change_failure_rate is None or 0 <= m.change_failure_rate <= 1
    assert m.time_to_restore_p50_s is None or m.time_to_restore_p50_s >= 0
    assert m.unrestored <= m.failures
