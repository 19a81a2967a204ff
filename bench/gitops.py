"""Benchmark: history, rollback and bump-overlay against the raw git work each one needs.

    uv run python bench/gitops.py [--quick] [--rounds N] [--sizes 1000,10000]

Builds, with ``git fast-import``, a bare ``origin`` and a clone for each of two shapes and each
size (commits on ``main``):

* **deep**: 3 overlays (dev, stage, prod); one commit in ten touches prod (~1,000 of 10,000);
* **wide**: 50 overlays; prod is touched by one commit in fifty.

prod's history holds bumps (``Dex-*`` trailers), manual commits, edits that keep the tag, and a
rollback every 25th change (the known bad tags). Every row runs ours (``dex_tasks.cli.main`` in
this process, imports warm) and its floor (the raw git work the task cannot avoid),
interleaved round by round, ours first in even rounds and the floor first in odd ones. One more
row, ``..., process``, runs ``python -m dex_tasks history prod --limit 10`` as a process, as a user
or a CI step does: start-up and imports included (for a short task they are most of it;
``.pyc`` files are written, or not, as the environment says: PYTHONDONTWRITEBYTECODE).

=============================  ===============================================================
row                            floor
=============================  ===============================================================
``history prod``               ``git log -p -- <prod overlay>``
``history prod --limit 10``    ``git log -p -10 -- <prod overlay>``
``rollback prod --direct``     the same full ``git log -p``, then the write below
``bump-overlay prod TAG``      fetch, worktree add, replace the tag, ``commit -a``, push, worktree remove
``... --limit 10, process``    ``git log -p -10 -- <prod overlay>``
=============================  ===============================================================

Writes are undone after each sample (origin's ``main`` is put back, untimed), so every round
measures the same state. Printed: the median of each and its ratio to the floor's median, and the
spread (min-max over the median) as the noise on a shared machine. Figures only, no pass/fail.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dex_tasks import cli  # noqa: E402 - after the path setup above, so it runs from a checkout

if TYPE_CHECKING:
    from collections.abc import Callable

IMAGE = "ghcr.io/data-literate/dex"
NAME = "data-literate/dex"
OVERLAYS = "infra/argocd/overlays"
ROWS = (
    "history prod", "history prod --limit 10", "rollback prod --direct", "bump-overlay prod TAG --direct",
    "history prod --limit 10, process",
)  # fmt: skip
ROLLBACK_EVERY = 25  # every 25th prod change rolls back the one before (its tag becomes known bad)
KEEP_TAG_EVERY = 40  # every 40th prod commit edits the file without changing the tag


def _overlay(env: str, tag: str, note: str = "") -> str:
    return (
        f"# {env} overlay of the dex app{note}\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: dex-{env}\nresources:\n  - ../../base\nimages:\n"
        f"  - name: {NAME}\n    newName: {IMAGE}\n    newTag: {tag}  # updated by CD\n"
    )


_BASE = {
    f"{OVERLAYS}/../base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    f"{OVERLAYS}/../base/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dex\nspec:\n  selector:\n"
        "    matchLabels:\n      app: dex\n  template:\n    metadata:\n      labels:\n        app: dex\n"
        "    spec:\n      containers:\n        - name: dex\n          image: data-literate/dex\n"
    ),
}


def _envs(shape: str) -> list[str]:
    return ["dev", "stage", "prod"] if shape == "deep" else [f"e{i:02d}" for i in range(49)] + ["prod"]


def _pyproject(envs: list[str]) -> str:
    names = ", ".join(f'"{e}"' for e in envs)
    project = '[project]\nname = "dex"\nversion = "0.1.0"\n'
    # No registry here (the image is not pushed anywhere): the registry's round trip is network
    # work with no floor in this bench, so it is left out of ours too (no digests, as the JSON
    # says), and with it the scan gate, which needs the registry's verdicts.
    dex = f'image = "{IMAGE}"\nenvironments = [{names}]\nregistry-check = "off"\n'
    return f"{project}\n[tool.dex]\n{dex}\n[tool.dex.scan]\nrequired-for = []\n"


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def _stream(shape: str, commits: int) -> bytes:
    """A fast-import stream of ``commits`` commits on main after an initial one."""
    envs = _envs(shape)
    norm = NAME.replace("/", "-")
    out = io.BytesIO()
    stamp = 1_700_000_000

    def commit(mark: int, message: str, files: dict[str, str]) -> None:
        out.write(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.write(b"committer Dev <dev@example.com> %d +0000\n" % (stamp + mark * 60))
        out.write(_data(message))
        if mark > 1:
            out.write(b"from :%d\n" % (mark - 1))
        for path, text in files.items():
            out.write(f"M 100644 inline {os.path.normpath(path)}\n".encode())
            out.write(_data(text))

    first = {"pyproject.toml": _pyproject(envs), **_BASE, "src/app.py": "x = 0\n"}
    first.update({f"{OVERLAYS}/{env}/kustomization.yaml": _overlay(env, "sha-00000000") for env in envs})
    commit(1, "initial layout", first)
    prod_tags = ["sha-00000000"]
    prod_changes = 0
    others = [e for e in envs if e != "prod"]
    per_prod = 10 if shape == "deep" else 50
    for i in range(1, commits + 1):
        mark = i + 1
        if i % per_prod == 0:
            prod_changes += 1
            path = f"{OVERLAYS}/prod/kustomization.yaml"
            current = prod_tags[-1]
            if prod_changes % KEEP_TAG_EVERY == 0:
                commit(mark, "docs: note on prod", {path: _overlay("prod", current, f" ({i})")})
                continue
            if prod_changes % ROLLBACK_EVERY == 0 and len(prod_tags) > 1:
                tag = prod_tags[-2]
                message = (
                    f"fix: rollback prod to {tag}\n\nDex-Action: rollback\nDex-Env: prod\n"
                    f"Dex-Tag: {tag}\nDex-Previous-Tag: {current}\n"
                )
            elif prod_changes % 7 == 0:
                tag = f"sha-{i:08x}"
                message = f"manual prod deploy {tag}\n"
            else:
                tag = f"sha-{i:08x}"
                message = (
                    f"chore: update prod image to {tag}\n\nDex-Action: bump\nDex-Env: prod\n"
                    f"Dex-Tag: {tag}\nDex-Previous-Tag: {current}\n"
                )
            prod_tags.append(tag)
            commit(mark, message, {path: _overlay("prod", tag)})
        elif i % 5 == 4:
            commit(mark, f"feat: app change {i}", {"src/app.py": f"x = {i}  # {norm}\n"})
        else:
            env = others[i % len(others)]
            tag = f"sha-{i:08x}"
            commit(mark, f"chore: update {env} image to {tag}\n\nDex-Action: bump\nDex-Env: {env}\n",
                   {f"{OVERLAYS}/{env}/kustomization.yaml": _overlay(env, tag)})  # fmt: skip
    if prod_changes % ROLLBACK_EVERY == 0:  # end on a plain bump, as a rollback would start from
        final = {f"{OVERLAYS}/prod/kustomization.yaml": _overlay("prod", "sha-ffffffff")}
        commit(commits + 2, "chore: final prod bump", final)
    return out.getvalue()


def _git(*args: str | Path, cwd: Path, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *(str(a) for a in args)], input=stdin, capture_output=True, check=True
    )
    return done.stdout.decode()


def build(where: Path, shape: str, commits: int) -> tuple[Path, Path]:
    """A bare origin from fast-import and a full clone of it (the CI checkout)."""
    origin, clone = where / f"{shape}-{commits}.git", where / f"{shape}-{commits}"
    origin.mkdir()
    _git("init", "--quiet", "--bare", "--initial-branch=main", cwd=origin)
    _git("fast-import", "--quiet", cwd=origin, stdin=_stream(shape, commits))
    _git("repack", "-a", "-d", "-q", cwd=origin)
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    for key, value in (("user.name", "Bench"), ("user.email", "bench@example.com")):
        _git("config", key, value, cwd=clone)
    return origin, clone


def _ours(clone: Path, *argv: str) -> None:
    sink_out, sink_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(sink_out), contextlib.redirect_stderr(sink_err):
        code = cli.main([*argv, "--json", "-C", str(clone)])
    if code != 0:
        raise SystemExit(f"dex-tasks {' '.join(argv)} failed ({code}):\n{sink_err.getvalue()[-2000:]}")


def _process(clone: Path, *argv: str) -> None:
    # This checkout's package, whatever the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "dex_tasks", *argv, "--json", "-C", str(clone)],
        capture_output=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"dex-tasks {' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}"
        )


def _floor_write(clone: Path, path: str, tag: str) -> None:
    """fetch, a detached worktree, the tag replaced in Python, commit -a, push, remove."""
    _git("fetch", "--quiet", "origin", "+refs/heads/main:refs/remotes/origin/main", cwd=clone)
    with tempfile.TemporaryDirectory(prefix="floor-") as holder:
        wt = Path(holder) / "wt"
        _git("worktree", "add", "--quiet", "--detach", wt, "refs/remotes/origin/main", cwd=clone)
        file = wt / path
        text = file.read_text(encoding="utf-8")
        start = text.index("newTag: ") + len("newTag: ")
        end = text.index(" ", start)
        file.write_text(text[:start] + tag + text[end:], encoding="utf-8")
        _git("commit", "--quiet", "-a", "-m", f"chore: update prod image to {tag}", cwd=wt)
        _git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=wt)
        _git("worktree", "remove", "--force", wt, cwd=clone)


def _scan_then_write(scan: Callable[[], object], clone: Path, path: str, tag: str) -> None:
    scan()
    _floor_write(clone, path, tag)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench(origin: Path, clone: Path, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    path = f"{OVERLAYS}/prod/kustomization.yaml"
    tip = _git("rev-parse", "refs/heads/main", cwd=origin).strip()

    def reset() -> None:
        _git("update-ref", "refs/heads/main", tip, cwd=origin)

    def log(*extra: str) -> Callable[[], object]:
        return lambda: _git("log", "-p", *extra, "refs/remotes/origin/main", "--", path, cwd=clone)

    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        ROWS[0]: (lambda: _ours(clone, "history", "prod"), log()),
        ROWS[1]: (lambda: _ours(clone, "history", "prod", "--limit", "10"), log("-10")),
        ROWS[2]: (
            lambda: _ours(clone, "rollback", "prod", "--direct"),
            lambda: _scan_then_write(log(), clone, path, "sha-abcdef01"),
        ),
        ROWS[3]: (
            lambda: _ours(clone, "bump-overlay", "prod", "sha-abcdef02", "--direct"),
            lambda: _floor_write(clone, path, "sha-abcdef02"),
        ),
        ROWS[4]: (lambda: _process(clone, "history", "prod", "--limit", "10"), log("-10")),
    }
    samples: dict[str, tuple[list[float], list[float]]] = {row: ([], []) for row in ROWS}
    for case in cases.values():  # warm-up: imports, the page cache, git's pack index
        case[0]()
        reset()
        case[1]()
        reset()
    for round_ in range(rounds):
        for row, (ours, floor) in cases.items():
            pair = [(0, ours), (1, floor)]
            for which, action in pair if round_ % 2 == 0 else pair[::-1]:
                samples[row][which].append(_timed(action))
                reset()
    return samples


def _spread(values: list[float]) -> str:
    median = statistics.median(values)
    return f"{(max(values) - min(values)) / median * 100:.0f}%"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 commits only, 3 rounds (under a minute)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--sizes", default=None, help="comma-separated commit counts (default 1000,10000)")
    parser.add_argument("--shapes", default="deep,wide", help="deep, wide or both")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = [int(s) for s in (args.sizes or ("1000" if args.quick else "1000,10000")).split(",")]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    started = time.perf_counter()
    results: dict[tuple[str, int], dict[str, tuple[list[float], list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="dex-bench-gitops-") as tmp:
        for shape in shapes:
            for size in sizes:
                built = time.perf_counter()
                origin, clone = build(Path(tmp), shape, size)
                prod = _git(
                    "rev-list", "--count", "HEAD", "--", f"{OVERLAYS}/prod/kustomization.yaml", cwd=clone
                )
                took = time.perf_counter() - built
                print(
                    f"{shape} {size}: built in {took:.1f}s, {prod.strip()} prod commits",
                    file=sys.stderr,
                    flush=True,
                )
                results[shape, size] = bench(origin, clone, rounds)
    print(f"\n{rounds} interleaved rounds; medians in ms; spread = (max-min)/median of each side")
    head = f"{'shape':<6} {'commits':>7}  {'row':<32} {'ours':>9} {'floor':>9} {'ratio':>7}"
    print(f"{head}  {'spread ours/floor':>17}")
    for (shape, size), samples in results.items():
        for row, (ours, floor) in samples.items():
            o, f = statistics.median(ours), statistics.median(floor)
            spread = f"{_spread(ours)}/{_spread(floor)}"
            figures = f"{o * 1000:>9.1f} {f * 1000:>9.1f} {o / f:>6.1f}x"
            print(f"{shape:<6} {size:>7}  {row:<32} {figures}  {spread:>17}")
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
