"""Benchmark: DORA metrics over a generated repository of 10,000 commits.

    uv run python bench/metrics.py [--commits 10000] [--every 10]

A repository is written with ``git fast-import``: ``--commits`` app commits, and after every
``--every``-th one an overlay commit that deploys it (a ``Dex-Action: bump`` trailer), with a
rollback now and then. Then it measures, each best of three:

* reading the commit graph (``git log`` in ``dora.GRAPH_FORMAT``, as ``metrics`` does);
* the four keys over it (``dora.env_metrics``, pure);
* reading the env's deployments from git (``gitops.history.deployments``, one ``git show`` per
  overlay commit today; that module is being rewritten for speed), for scale.

Figures are printed; there are no assertions. The target is the first two together within 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dex_tasks.gitops import history  # noqa: E402 - after the path setup above, so it runs from a checkout
from dex_tasks.insight import dora  # noqa: E402

OVERLAY = "infra/argocd/overlays/prod/kustomization.yaml"
START = 1_700_000_000


def _overlay(tag: str) -> str:
    return f"images:\n  - name: data-literate/dex\n    newTag: {tag}\n"


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def generate(root: Path, commits: int, every: int) -> int:
    """Write the repository; returns how many overlay commits it holds."""
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(root)], check=True)
    stream = bytearray()
    mark = 0
    when = START
    deploys = 0
    for i in range(commits):
        mark += 1
        when += 60
        stream += b"commit refs/heads/main\nmark :%d\n" % mark
        stream += b"committer Dev <dev@example.invalid> %d +0000\n" % when
        stream += _data(f"feat: change {i}")
        if mark > 1:
            stream += b"from :%d\n" % (mark - 1)
        stream += b"M 100644 inline app.py\n" + _data(f"VERSION = {i}\n")
        stream += b"\n"
        if i % every == every - 1:
            app_mark = mark
            rollback = deploys % 7 == 6
            mark += 1
            when += 300
            # The sha is not known inside the stream: the tag names the app commit by its mark's
            # position; the graph lookup is what is measured, so a tag the graph resolves is enough.
            tag = f"sha-app{app_mark}"
            action = "rollback" if rollback else "bump"
            stream += b"commit refs/heads/main\nmark :%d\n" % mark
            stream += b"committer dex <dex@example.invalid> %d +0000\n" % when
            stream += _data(f"chore: {action} prod to {tag}\n\nDex-Action: {action}\nDex-Env: prod\n")
            stream += b"from :%d\nM 100644 inline %s\n" % (mark - 1, OVERLAY.encode()) + _data(_overlay(tag))
            stream += b"\n"
            deploys += 1
    subprocess.run(["git", "fast-import", "--quiet"], input=bytes(stream), cwd=root, check=True)
    return deploys


def best(func: object, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()  # type: ignore[operator]  # a zero-argument callable
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dex-bench-metrics-") as tmp:
        root = Path(tmp) / "repo"
        start = time.perf_counter()
        overlay_commits = generate(root, args.commits, args.every)
        took = time.perf_counter() - start
        print(f"generated {args.commits} app + {overlay_commits} overlay commits in {took:.2f} s")

        def graph() -> dora.Graph:
            out = subprocess.run(
                ["git", "log", dora.GRAPH_FORMAT, "main", "--"], cwd=root, check=True, capture_output=True,
                text=True,
            ).stdout  # fmt: skip
            return dora.parse_graph(out)

        graph_s, loaded = best(graph)
        assert isinstance(loaded, dora.Graph)  # noqa: S101 - narrows the type for the calls below
        history_s, entries = best(lambda: history.deployments(root, "main", OVERLAY, "data-literate/dex"), 1)
        assert isinstance(entries, list)  # noqa: S101 - narrows the type
        # Tags name marks (see generate): map them onto the commit shas the graph holds.
        marks = subprocess.run(
            ["git", "log", "--reverse", "--format=%H", "main"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        deploys = [
            dora.Deploy(tag=f"sha-{marks[int(d.tag.removeprefix('sha-app')) - 1]}", commit=d.commit,
                        at=d.at, rollback=d.rollback)
            for d in dora.from_history(entries)
        ]  # fmt: skip
        since = dt.datetime.fromtimestamp(START, tz=dt.UTC)
        until = since + dt.timedelta(days=30)
        keys_s, metrics = best(lambda: dora.env_metrics(deploys, loaded, since=since, until=until))
        print(f"commit graph ({len(loaded.times)} commits):     {graph_s:.3f} s")
        print(f"four keys over {len(deploys)} deployments:   {keys_s:.3f} s")
        print(f"graph + four keys (target <= 2 s):    {graph_s + keys_s:.3f} s")
        print(f"history.deployments ({len(entries)} entries): {history_s:.3f} s (git show per commit)")
        print(f"result: {metrics}")


if __name__ == "__main__":
    main()
