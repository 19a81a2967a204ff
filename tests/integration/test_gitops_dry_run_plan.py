"""``--dry-run`` prints exactly the mutating commands the real run then runs.

The plan is not a description kept beside the code: dry-run takes the real path and proc echoes
each mutating command instead of running it. These tests hold that to the letter for every
delivery mode of bump-overlay, promote and rollback: record what a real run starts (through
proc.run, quiet clean-up commands included), compare it with the ``# dry-run: not run`` lines a
dry run printed from the same state. Only temporary paths and the new commit's id may differ.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import proc
from dex_tasks.gitops.workflow import PLANNED_COMMIT
from tests.fakes.github_api import FakeGitHub
from tests.gitops_fixtures import GitOpsRepo, build, enable_signing, ssh_signing_key, without_tmp_paths
from tests.helpers import need_tool

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = pytest.mark.timeout(120)

NOT_RUN = "    # dry-run: not run"

# (argv with T4 for tags[4], the number of real runs before the compared pair)
CASES: list[tuple[tuple[str, ...], int]] = [
    (("bump-overlay", "dev", "T4"), 0),  # --pr, a new branch: lease on "" (must not exist)
    (("bump-overlay", "dev", "T4"), 1),  # --pr again: lease on the branch's real tip
    (("bump-overlay", "stage", "prod", "T4", "--direct"), 0),
    (("bump-overlay", "dev", "T4", "--no-push"), 0),  # the local branch points at the new commit
    (("promote", "stage", "prod", "--verify", "git"), 0),
    (("promote", "stage", "prod", "--verify", "git", "--direct"), 0),
    (("promote", "stage", "prod", "--verify", "git", "--no-push"), 0),
    (("rollback", "stage"), 0),  # --direct is rollback's default
    (("rollback", "stage", "--pr"), 0),
    (("rollback", "stage", "--no-push"), 0),
    (("rollback", "dev", "--revert"), 0),
]


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return build(tmp_path)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghs_fake_token_for_tests", repo="data-literate/dex") as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The argv of every mutating command proc.run is asked to start (the observer is test-only)."""
    seen: list[tuple[str, ...]] = []
    original = proc.run

    def run(argv: Sequence[str], *, read_only: bool = False, **kwargs: Any) -> proc.Result:
        if not read_only:
            seen.append(tuple(str(arg) for arg in argv))
        return original(argv, read_only=read_only, **kwargs)

    monkeypatch.setattr(proc, "run", run)
    return seen


def _planned(err: str) -> list[str]:
    return [
        without_tmp_paths(line[2:].removesuffix(NOT_RUN))
        for line in err.splitlines()
        if line.endswith(NOT_RUN)
    ]


def _ran(argvs: list[tuple[str, ...]], commit: str | None) -> list[str]:
    """As proc echoes them, with the new commit's id named as the dry run names it."""
    return [
        without_tmp_paths(proc.quote([PLANNED_COMMIT if commit and arg == commit else arg for arg in argv]))
        for argv in argvs
    ]


@pytest.mark.parametrize(("argv", "before"), CASES, ids=[" ".join(a) + " #" * n for a, n in CASES])
def test_dry_run_prints_the_mutating_commands_the_real_run_runs(  # noqa: PLR0917 - pytest passes fixtures positionally
    repo: GitOpsRepo,
    github: FakeGitHub,
    run_cli: CliRunner,
    started: list[tuple[str, ...]],
    argv: tuple[str, ...],
    before: int,
) -> None:
    argv = tuple(repo.tags[4] if arg == "T4" else arg for arg in argv)
    for _ in range(before):
        assert run_cli(*argv, cwd=repo.clone).code == 0
    state = repo.snapshot()
    calls = len(github.requests)

    dry = run_cli(*argv, "--dry-run", "--json", cwd=repo.clone)
    assert dry.code == 0, dry.err
    assert repo.snapshot() == state
    assert len(github.requests) == calls  # a dry run asks GitHub nothing either
    planned = _planned(dry.err)

    started.clear()
    real = run_cli(*argv, "--json", cwd=repo.clone)
    assert real.code == 0, real.err
    data = json.loads(real.out)
    assert data["changed"] is True
    ran = _ran(started, data["commit"])

    assert planned == ran, f"dry run:\n{dry.err}\nreal run:\n{real.err}"
    # Not vacuous: the commit and its delivery are among them.
    assert any(" commit " in line for line in ran)
    delivery = " push " if data["pushed"] else " branch --force "
    assert any(delivery in line for line in ran), ran
    assert json.loads(dry.out)["branch"] == data["branch"]


# (what the real runs before make, the compared argv): paths that need a history of their own.
SETUP_CASES: list[tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = [
    # --revert of CD's stage/prod commit: only prod's file is put back (no `git revert`).
    ((("bump-overlay", "stage", "prod", "T4", "--direct"),), ("rollback", "prod", "--revert")),
    ((("bump-overlay", "stage", "prod", "T4", "--direct"),), ("rollback", "prod", "--revert", "--pr")),
    # --again after a rollback: the second rollback without TAG, meant.
    (
        (
            ("bump-overlay", "prod", "T3", "--direct"),
            ("bump-overlay", "prod", "T4", "--direct"),
            ("rollback", "prod"),
        ),
        ("rollback", "prod", "--again"),
    ),
]


@pytest.mark.parametrize(("setup", "argv"), SETUP_CASES, ids=[" ".join(a) for _, a in SETUP_CASES])
def test_dry_run_plan_of_revert_and_again(  # noqa: PLR0917 - pytest passes fixtures positionally
    repo: GitOpsRepo,
    github: FakeGitHub,
    run_cli: CliRunner,
    started: list[tuple[str, ...]],
    setup: tuple[tuple[str, ...], ...],
    argv: tuple[str, ...],
) -> None:
    for step in setup:
        tags = {"T3": repo.tags[3], "T4": repo.tags[4]}
        done = run_cli(*(tags.get(arg, arg) for arg in step), cwd=repo.clone)
        assert done.code == 0, done.err
    state = repo.snapshot()
    dry = run_cli(*argv, "--dry-run", "--json", cwd=repo.clone)
    assert dry.code == 0, dry.err
    assert repo.snapshot() == state
    planned = _planned(dry.err)
    started.clear()
    real = run_cli(*argv, "--json", cwd=repo.clone)
    assert real.code == 0, real.err
    data = json.loads(real.out)
    assert data["changed"] is True
    assert planned == _ran(started, data["commit"]), f"dry run:\n{dry.err}\nreal run:\n{real.err}"
    assert any(" commit " in line for line in planned)
    assert json.loads(dry.out)["tag"] == data["tag"]


SIGNED_CASES: list[tuple[str, ...]] = [
    ("bump-overlay", "stage", "prod", "T4", "--direct"),
    ("bump-overlay", "prod", "T4"),
    ("rollback", "dev", "--revert"),  # the amend signs
]


@pytest.mark.parametrize("argv", SIGNED_CASES, ids=[" ".join(a) for a in SIGNED_CASES])
def test_dry_run_plans_the_signed_commit(  # noqa: PLR0917 - pytest passes fixtures positionally
    repo: GitOpsRepo,
    github: FakeGitHub,
    run_cli: CliRunner,
    started: list[tuple[str, ...]],
    tmp_path: Path,
    argv: tuple[str, ...],
) -> None:
    """With sign-commits, the plan's commit carries ``-S`` exactly as the real run's does."""
    need_tool("ssh-keygen")
    enable_signing(repo, ssh_signing_key(tmp_path / "keys"), ("dev", "prod"))
    argv = tuple(repo.tags[4] if arg == "T4" else arg for arg in argv)
    dry = run_cli(*argv, "--dry-run", "--json", cwd=repo.clone)
    assert dry.code == 0, dry.err
    planned = _planned(dry.err)
    started.clear()
    real = run_cli(*argv, "--json", cwd=repo.clone)
    assert real.code == 0, real.err
    ran = _ran(started, json.loads(real.out)["commit"])
    assert planned == ran, f"dry run:\n{dry.err}\nreal run:\n{real.err}"
    assert any(" commit " in line and " -S " in line for line in ran), ran
