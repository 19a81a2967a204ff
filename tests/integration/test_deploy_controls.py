"""Deploy controls end to end with real git: locks on origin, freeze windows, soak time.

Every refusal is exit 1, one line, and leaves origin and the clone exactly as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import durations
from dex_tasks.config import load
from dex_tasks.controls import guard
from dex_tasks.errors import ControlRefused
from dex_tasks.gitops import locks, state
from tests.gitops_fixtures import GitOpsRepo, build
from tests.helpers import git, venv_env

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = pytest.mark.timeout(180)

ME = "Dex Test <dex-test@example.invalid>"
OTHER = "Other Person <other@example.invalid>"


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    repo = build(tmp_path)
    git("config", "user.name", "Other Person", cwd=repo.writer)
    git("config", "user.email", "other@example.invalid", cwd=repo.writer)
    return repo


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _origin_lock_refs(repo: GitOpsRepo) -> str:
    return git("for-each-ref", "--format=%(refname)", "refs/dex/", cwd=repo.origin)


def _rollback_date(repo: GitOpsRepo) -> str:
    """Committer date of the rollback that gave stage its current tag T1.

    Not the newest commit on stage's overlay: the fixture's hand edit after the rollback keeps the
    tag, so soak counts from the rollback, and the fixture dates the two a second apart (so the
    ``remaining_s`` of 600 below tells the one from the other).
    """
    return git("log", "-1", "--format=%cI", "--grep=^fix: rollback stage", "main", cwd=repo.origin)


def _config(repo: GitOpsRepo, extra: str) -> None:
    """Add to the clone's (uncommitted) pyproject: config is read from the working copy."""
    path = repo.clone / "pyproject.toml"
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")


# -- lock, unlock, locks -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ev\u202eil Person", "N" * 600], ids=["bidi override", "600 characters"])
def test_a_holder_whose_name_is_shown_cleaned_still_knows_its_own_lock(
    run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # A lock's Dex-Lock-By is read back inert and cut (anyone can push one); the holder's own
    # identity is compared in that same form, or it would be a stranger to its own lock.
    monkeypatch.setenv("DEX_NOW", "2026-07-01T10:00:00Z")
    git("config", "user.name", name, cwd=repo.clone)
    assert run_cli("lock", "prod", "--reason", "db migration", cwd=repo.clone).code == 0
    again = run_cli("lock", "prod", "--reason", "db migration", cwd=repo.clone)
    assert again.code == 0, again.err
    assert "prod is already locked by you" in again.out
    bump = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert bump.code == 0, bump.err  # the holder passes its own lock
    unlocked = run_cli("unlock", "prod", cwd=repo.clone)
    assert unlocked.code == 0, unlocked.err
    assert _origin_lock_refs(repo) == ""


def test_lock_locks_and_unlock(run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEX_NOW", "2026-07-01T10:00:00Z")
    before = repo.snapshot()
    result = run_cli("lock", "prod", "--reason", "db migration", "--expires", "2h", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert _json(result.out) == {
        "task": "lock", "dry_run": False, "env": "prod", "by": ME, "reason": "db migration",
        "since": "2026-07-01T10:00:00Z", "expires": "2026-07-01T12:00:00Z", "locked": True, "changed": True,
        "exit_code": 0,
    }  # fmt: skip
    assert _origin_lock_refs(repo) == "refs/dex/locks/prod"
    sha = git("rev-parse", "refs/dex/locks/prod", cwd=repo.origin)
    # An empty-tree commit without a parent, made without touching the clone's refs or files.
    assert git("rev-list", "--count", sha, cwd=repo.origin) == "1"
    assert git("ls-tree", sha, cwd=repo.origin) == ""
    message = git("log", "-1", "--format=%B", sha, cwd=repo.origin)
    assert f"Dex-Lock-By: {ME}" in message
    assert "Dex-Lock-Reason: db migration" in message
    assert "Dex-Lock-Since: 2026-07-01T10:00:00Z" in message
    assert "Dex-Lock-Expires: 2026-07-01T12:00:00Z" in message
    after = repo.snapshot()
    assert {k: v for k, v in after.items() if k != "origin_refs"} == {
        k: v for k, v in before.items() if k != "origin_refs"
    }

    # The other clone sees it (no local refs made there either), and cannot take it.
    writer_refs = git("for-each-ref", cwd=repo.writer)
    listed = run_cli("locks", "--json", cwd=repo.writer)
    assert listed.code == 0, listed.err
    assert _json(listed.out)["locks"] == [
        {"env": "prod", "by": ME, "reason": "db migration", "since": "2026-07-01T10:00:00Z",
         "expires": "2026-07-01T12:00:00Z", "expired": False},
    ]  # fmt: skip
    assert git("for-each-ref", cwd=repo.writer) == writer_refs
    taken = run_cli("lock", "prod", "--reason", "mine now", cwd=repo.writer)
    assert taken.code == 1
    assert f"prod is already locked by {ME} since 2026-07-01T10:00:00Z: db migration" in taken.err
    assert len(taken.err.strip().splitlines()[-1:]) == 1
    refused = run_cli("unlock", "prod", cwd=repo.writer)
    assert refused.code == 1
    assert "use --force" in refused.err
    assert git("rev-parse", "refs/dex/locks/prod", cwd=repo.origin) == sha

    # The holder updates reason and expiry; since stays.
    monkeypatch.setenv("DEX_NOW", "2026-07-01T11:00:00Z")
    update = run_cli(
        "lock", "prod", "--reason", "db migration, part 2", "--expires", "1h", "--json", cwd=repo.clone
    )
    assert update.code == 0, update.err
    data = _json(update.out)
    assert (data["changed"], data["since"], data["expires"]) == (
        True,
        "2026-07-01T10:00:00Z",
        "2026-07-01T12:00:00Z",
    )
    same = run_cli(
        "lock", "prod", "--reason", "db migration, part 2", "--expires", "1h", "--json", cwd=repo.clone
    )
    assert _json(same.out)["changed"] is False

    # Expired: no longer blocks, and anyone may take it over.
    monkeypatch.setenv("DEX_NOW", "2026-07-01T12:00:01Z")
    over = run_cli("lock", "prod", "--reason", "mine now", "--json", cwd=repo.writer)
    assert over.code == 0, over.err
    assert _json(over.out)["by"] == OTHER
    assert _json(over.out)["expires"] is None
    forced = run_cli("unlock", "prod", "--force", "--json", cwd=repo.clone)
    assert forced.code == 0, forced.err
    assert _json(forced.out)["locked"] is False
    assert _origin_lock_refs(repo) == ""
    again = run_cli("unlock", "prod", "--json", cwd=repo.clone)
    assert (again.code, _json(again.out)["changed"]) == (0, False)


def test_lock_dry_run_echoes_and_writes_nothing(run_cli: CliRunner, repo: GitOpsRepo) -> None:
    before = repo.snapshot()
    result = run_cli("lock", "prod", "--reason", "try", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert "--force-with-lease=refs/dex/locks/prod: origin '<new-commit>:refs/dex/locks/prod'" in result.err
    assert "# dry-run: not run" in result.err
    assert repo.snapshot() == before


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("lock", "prod"), "--reason"),
        (("lock", "prod", "--reason", " "), "--reason must say why"),
        (("lock", "prod", "--reason", "x", "--expires", "2 hours"), "invalid duration"),
        # An unset "$TTL" in a script: a lock that never ends is not what it asked for.
        (("lock", "prod", "--reason", "x", "--expires", ""), "invalid duration ''"),
        (("lock", "prod", "--reason", "x", "--expires", "  "), "invalid duration"),
        (("lock", "prod", "--reason", "x", "--expires", "1h1h"), "invalid duration"),
        (("lock", "prod", "--reason", "x", "--expires", "3651d"), "at most 3650d"),
        (("lock", "qa", "--reason", "x"), "unknown environment 'qa'"),
        (("lock", "prod", "--reason", "a\nb"), "control character"),
    ],
)
def test_lock_bad_input_is_exit_2(
    run_cli: CliRunner, repo: GitOpsRepo, argv: tuple[str, ...], problem: str
) -> None:
    result = run_cli(*argv, cwd=repo.clone)
    assert result.code == 2
    assert problem in result.err
    assert _origin_lock_refs(repo) == ""


def test_two_clones_lock_at_the_same_instant_exactly_one_wins(repo: GitOpsRepo) -> None:
    """Two real processes, released together by a barrier: the server's atomic lease lets one in."""
    barrier = threading.Barrier(2, timeout=60)
    codes: dict[str, int] = {}

    def lock(where: Path) -> None:
        barrier.wait()
        done = subprocess.run(
            [sys.executable, "-m", "dex_tasks", "lock", "prod", "--reason", f"from {where.name}"],
            cwd=where, env=venv_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        codes[where.name] = done.returncode

    threads = [threading.Thread(target=lock, args=(where,)) for where in (repo.clone, repo.writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert sorted(codes.values()) == [0, 1], codes
    winner = next(name for name, code in codes.items() if code == 0)
    message = git("log", "-1", "--format=%B", "refs/dex/locks/prod", cwd=repo.origin)
    assert f"Dex-Lock-Reason: from {winner}" in message


def test_losing_the_push_race_is_exit_1(
    run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the other clone locks between our read (no lock) and our push."""

    def other_locks_first(env: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "dex_tasks", "lock", env, "--reason", "faster"],
            cwd=repo.writer, env=venv_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    monkeypatch.setattr(locks, "_before_push", other_locks_first)
    result = run_cli("lock", "prod", "--reason", "slower", "--json", cwd=repo.clone)
    assert result.code == 1
    data = _json(result.out)
    assert data["by"] == OTHER
    assert "changed on origin while we wrote" in str(data["error"])
    assert "Dex-Lock-Reason: faster" in git(
        "log", "-1", "--format=%B", "refs/dex/locks/prod", cwd=repo.origin
    )


# -- a locked env refuses writes -----------------------------------------------------------------


def test_bump_into_a_locked_env(run_cli: CliRunner, repo: GitOpsRepo) -> None:
    assert run_cli("lock", "prod", "--reason", "incident 42", cwd=repo.writer).code == 0
    before = repo.snapshot()
    for dry in ((), ("--dry-run",)):
        refused = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", *dry, cwd=repo.clone)
        assert refused.code == 1
        line = refused.err.strip().splitlines()[-1]
        assert line.startswith("dex-tasks bump-overlay: error: prod is locked by Other Person")
        assert "incident 42" in line
        assert "--break-lock" in line
        assert repo.snapshot() == before
    # Several envs: the locked one refuses the lot.
    assert run_cli("bump-overlay", "stage", "prod", repo.tags[4], "--direct", cwd=repo.clone).code == 1
    assert repo.snapshot() == before
    broken = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", "--break-lock", cwd=repo.clone)
    assert broken.code == 0, broken.err
    assert "Dex-Lock-Broken: prod" in repo.message("main")
    assert repo.tag("prod") == repo.tags[4]
    # The holder passes without breaking anything.
    own = run_cli("rollback", "prod", "--json", cwd=repo.writer)
    assert own.code == 0, own.err
    assert "Dex-Lock-Broken" not in repo.message("main")


def test_rollback_into_a_locked_env(run_cli: CliRunner, repo: GitOpsRepo) -> None:
    assert run_cli("lock", "stage", "--reason", "load test", cwd=repo.writer).code == 0
    refused = run_cli("rollback", "stage", cwd=repo.clone)
    assert refused.code == 1
    assert "stage is locked by Other Person" in refused.err
    broken = run_cli("rollback", "stage", "--break-lock", cwd=repo.clone)
    assert broken.code == 0, broken.err
    assert "Dex-Lock-Broken: stage" in repo.message("main")


def test_emergency_passes_a_lock_with_a_warning(repo: GitOpsRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """The guard itself (an emergency rollback needs a cluster, tested in the cluster suites)."""
    subprocess.run(
        [sys.executable, "-m", "dex_tasks", "lock", "prod", "--reason", "incident"],
        cwd=repo.writer, env=venv_env(), capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    cfg = load(repo.clone)

    class Report:
        def out(self, text: str = "") -> None:
            print(text)

        def warn(self, text: str) -> None:
            print("warning:", text, file=sys.stderr)

    repo_state = state.open_repo(cfg)
    with pytest.raises(ControlRefused, match="prod is locked by Other Person"):
        guard.check(Report(), cfg, repo_state, ["prod"], action="rollback", overrides=guard.Overrides())
    verdict = guard.check(
        Report(), cfg, repo_state, ["prod"], action="rollback", overrides=guard.Overrides(emergency=True)
    )
    assert verdict.trailers == ("Dex-Lock-Broken: prod",)
    assert "emergency rollback" in capsys.readouterr().err
    # An emergency is a rollback thing: it does not let a bump through.
    with pytest.raises(ControlRefused):
        guard.check(
            Report(), cfg, repo_state, ["prod"], action="bump", overrides=guard.Overrides(emergency=True)
        )


# -- freeze ----------------------------------------------------------------------------------------


def test_freeze_window(run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(repo, '\n[tool.dex.freeze]\nprod = ["Fri 16:00-Mon 08:00 Europe/Berlin"]\n')
    monkeypatch.setenv("DEX_NOW", "2026-07-03T17:00:00+02:00")  # a Friday evening in Berlin
    before = repo.snapshot()
    for argv in (
        ("bump-overlay", "prod", repo.tags[4], "--direct"),
        ("bump-overlay", "prod", repo.tags[4], "--direct", "--dry-run"),
        ("promote", "stage", "prod", "--verify", "git", "--direct"),
    ):
        refused = run_cli(*argv, cwd=repo.clone)
        assert refused.code == 1, refused.err
        line = refused.err.strip().splitlines()[-1]
        assert "prod is frozen (Fri 16:00-Mon 08:00 Europe/Berlin) until 2026-07-06T06:00:00Z" in line
        assert "--break-freeze" in line
        assert repo.snapshot() == before
    # Other envs are not frozen; rollbacks never are.
    assert run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone).code == 0
    rollback = run_cli("rollback", "prod", repo.tags[0], "--direct", cwd=repo.clone)
    assert rollback.code == 0, rollback.err  # already at T0: nothing to do, but not refused
    broken = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", "--break-freeze", cwd=repo.clone)
    assert broken.code == 0, broken.err
    assert "Dex-Freeze-Broken: prod" in repo.message("main")
    # Monday 08:00 in Berlin: open again.
    monkeypatch.setenv("DEX_NOW", "2026-07-06T08:00:00+02:00")
    assert run_cli("rollback", "prod", "--direct", cwd=repo.clone).code == 0
    assert run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone).code == 0
    assert "Dex-Freeze-Broken" not in repo.message("main")


def test_bad_freeze_config_is_exit_2(run_cli: CliRunner, repo: GitOpsRepo) -> None:
    _config(repo, '\n[tool.dex.freeze]\nprod = ["Fri 16:00-Mon 08:00 Europe/Berlim"]\n')
    result = run_cli("bump-overlay", "prod", repo.tags[4], cwd=repo.clone)
    assert result.code == 2
    assert "pyproject.toml: tool.dex.freeze.prod[0]: unknown time zone 'Europe/Berlim'" in result.err


# -- soak ------------------------------------------------------------------------------------------


def test_soak_time(run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo.clone / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[tool.dex]\n", '[tool.dex]\nsoak = { stage = "15m" }\n'), encoding="utf-8")
    # stage's current tag T1 came with the rollback commit (a hand edit after it kept the tag).
    deployed = durations.parse_instant(_rollback_date(repo), what="date")
    before = repo.snapshot()
    monkeypatch.setenv("DEX_NOW", durations.iso(deployed + durations.parse_duration("5m")))
    for dry in ((), ("--dry-run",)):
        refused = run_cli("promote", "stage", "prod", "--verify", "git", "--direct", *dry, cwd=repo.clone)
        assert refused.code == 1
        line = refused.err.strip().splitlines()[-1]
        assert f"promotion refused: stage has run {repo.tags[1]} since {durations.iso(deployed)}" in line
        assert "5m of the 15m soak: 10m left" in line
        assert repo.snapshot() == before
    forced = run_cli("promote", "stage", "prod", "--verify", "git", "--no-push", "--force", cwd=repo.clone)
    assert forced.code == 0, forced.err
    assert "promoting anyway (--force)" in forced.err
    monkeypatch.setenv("DEX_NOW", durations.iso(deployed + durations.parse_duration("15m")))
    done = run_cli("promote", "stage", "prod", "--verify", "git", "--direct", "--json", cwd=repo.clone)
    assert done.code == 0, done.err
    assert repo.tag("prod") == repo.tags[1]
    assert "Dex-Forced" not in repo.message("main")


# -- status shows the controls -------------------------------------------------------------------


def test_status_rows_show_lock_freeze_and_soak(
    run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))  # git only
    path = repo.clone / "pyproject.toml"
    text = path.read_text(encoding="utf-8").replace("[tool.dex]\n", '[tool.dex]\nsoak = { stage = "15m" }\n')
    path.write_text(
        text + '\n[tool.dex.freeze]\nprod = ["Fri 16:00-Mon 08:00 Europe/Berlin"]\n', encoding="utf-8"
    )
    deployed = durations.parse_instant(_rollback_date(repo), what="date")
    now = deployed + durations.parse_duration("5m")
    monkeypatch.setenv("DEX_NOW", durations.iso(now))
    assert run_cli("lock", "stage", "--reason", "load test", "--expires", "1h", cwd=repo.writer).code == 0
    result = run_cli("status", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    envs = {row["env"]: row for row in json.loads(result.out)["envs"]}
    assert envs["stage"]["lock"]["by"] == OTHER
    assert envs["stage"]["lock"]["expired"] is False
    assert envs["stage"]["soak"] == {
        "required": "15m", "tag": repo.tags[1], "since": durations.iso(deployed), "remaining_s": 600,
        "ok": False,
    }  # fmt: skip
    assert envs["dev"] == {**envs["dev"], "lock": None, "freeze": None, "soak": None}
    frozen = envs["prod"]["freeze"]
    assert frozen["frozen"] is (frozen["until"] is not None)
    assert frozen["window"] == ("Fri 16:00-Mon 08:00 Europe/Berlin" if frozen["frozen"] else None)
    human = run_cli("status", cwd=repo.clone)
    assert "stage: locked by Other Person" in human.out
    assert "stage: soaking: 10m left of 15m" in human.out


# -- dry-run plans what the real run does ----------------------------------------------------------

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree (sha1 object format)


@pytest.mark.parametrize(
    ("argv", "setup"),
    [
        (("lock", "prod", "--reason", "x"), ()),
        (("lock", "prod", "--reason", "y", "--expires", "1h"), (("lock", "prod", "--reason", "x"),)),
        (("unlock", "prod"), (("lock", "prod", "--reason", "x"),)),
    ],
)
def test_lock_dry_run_plans_the_real_commands(
    run_cli: CliRunner, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...], setup: tuple[tuple[str, ...], ...],
) -> None:  # fmt: skip
    from dex_tasks import proc  # noqa: PLC0415 - observed only here

    for step in setup:
        assert run_cli(*step, cwd=repo.clone).code == 0
    before = repo.snapshot()
    dry = run_cli(*argv, "--dry-run", cwd=repo.clone)
    assert dry.code == 0, dry.err
    assert repo.snapshot() == before
    planned = [line[2:].removesuffix("    # dry-run: not run") for line in dry.err.splitlines()
               if line.endswith("# dry-run: not run")]  # fmt: skip
    seen: list[tuple[str, ...]] = []
    original = proc.run

    def run(command: Any, *, read_only: bool = False, **kwargs: Any) -> proc.Result:
        if not read_only:
            seen.append(tuple(str(arg) for arg in command))
        return original(command, read_only=read_only, **kwargs)

    monkeypatch.setattr(proc, "run", run)
    real = run_cli(*argv, cwd=repo.clone)
    assert real.code == 0, real.err
    tip = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "refs/dex/locks/prod"],
        cwd=repo.origin, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    names = {EMPTY_TREE: locks.PLANNED_TREE, tip: locks.PLANNED_COMMIT} if tip and argv[0] == "lock" else {}

    def planned_name(arg: str) -> str:  # only the new objects' ids differ ('<sha>:refs/dex/locks/prod' too)
        for real_id, name in names.items():
            arg = arg.replace(real_id, name)
        return arg

    ran = [proc.quote([planned_name(arg) for arg in argv_]) for argv_ in seen]
    assert planned == ran
    assert any(" push " in line for line in ran)
