"""``sign-commits``: overlay commits of the listed envs are signed by git (ssh keys here, the real
ssh-keygen), verified with ``git verify-commit`` against an allowed-signers file; a setup git cannot
sign with is refused (exit 2) with nothing made; ``history`` reports ``signed`` and ``verified``."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from tests.gitops_fixtures import (
    GitOpsRepo,
    SigningKey,
    enable_signing,
    signature_status,
    ssh_signing_key,
)
from tests.helpers import git, need_tool

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    need_tool("ssh-keygen")
    return ssh_signing_key(tmp_path / "keys")


def _json(text: str) -> dict[str, Any]:
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def _verify(repo: GitOpsRepo, rev: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "verify-commit", rev],
        cwd=repo.origin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_commit_for_a_listed_env_is_signed_and_verifies(
    repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner
) -> None:
    enable_signing(repo, key, ("prod",))
    # stage is not listed, prod is: the one commit touching both is signed.
    result = run_cli("bump-overlay", "stage", "prod", repo.tags[4], "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    commit = _json(result.out)["commit"]
    assert repo.head("main") == commit
    assert signature_status(repo, commit) == "G"
    verified = _verify(repo, commit)
    assert verified.returncode == 0, verified.stderr
    assert 'Good "git" signature for dex-test@example.invalid' in verified.stderr
    assert " commit --quiet --no-verify -S --file=-" in result.err


def test_an_env_not_listed_is_not_signed(repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner) -> None:
    enable_signing(repo, key, ("prod",))
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    commit = _json(result.out)["commit"]
    assert signature_status(repo, commit) == "N"
    assert " -S " not in result.err


def test_a_revert_rollback_is_signed(repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner) -> None:
    enable_signing(repo, key, ("dev",))
    result = run_cli("rollback", "dev", "--revert", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    commit = _json(result.out)["commit"]
    assert repo.head("dev") == commit
    assert repo.subject(commit).startswith('Revert "')
    assert _verify(repo, commit).returncode == 0
    # One signature: the amended commit that leaves the worktree, not the revert before it.
    assert " revert --no-edit " in result.err
    assert " -S " not in next(line for line in result.err.splitlines() if " revert --no-edit " in line)
    assert " commit --quiet --amend --no-verify -S --file=-" in result.err


def test_a_pr_branch_commit_is_signed(repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner) -> None:
    enable_signing(repo, key, ("prod",))
    result = run_cli("promote", "stage", "prod", "--verify", "git", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["pushed"] is True
    assert git("rev-parse", f"refs/heads/{data['branch']}", cwd=repo.origin) == data["commit"]
    assert _verify(repo, data["commit"]).returncode == 0


def test_history_reports_signed_and_verified(repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner) -> None:
    enable_signing(repo, key, ("prod",))
    assert run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone).code == 0

    def entries() -> list[dict[str, Any]]:
        result = run_cli("history", "prod", "--json", cwd=repo.clone)
        assert result.code == 0, result.err
        found = _json(result.out)["entries"]
        assert isinstance(found, list)
        return found

    newest, manual = entries()
    assert (newest["signed"], newest["verified"]) == (True, True)
    assert (manual["signed"], manual["verified"]) == (False, False)  # the hand-made first commit
    table = run_cli("history", "prod", cwd=repo.clone).out.splitlines()
    assert "SIGNED" in table[0].split()
    assert "verified" in table[2].split()

    # Signed, but by a key the allowed-signers file does not list: git says U, not verified.
    other = ssh_signing_key(key.allowed_signers.parent.parent / "other")
    git("config", "gpg.ssh.allowedSignersFile", str(other.allowed_signers), cwd=repo.clone)
    newest, _ = entries()
    assert (newest["signed"], newest["verified"]) == (True, False)

    # No allowed-signers file configured at all: git alone would call the commit unsigned (N).
    git("config", "--unset", "gpg.ssh.allowedSignersFile", cwd=repo.clone)
    result = run_cli("history", "prod", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    newest = _json(result.out)["entries"][0]
    assert (newest["signed"], newest["verified"]) == (True, False)
    assert "allowedSignersFile needs to be configured" not in result.err


def _unset_key(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    git("config", "--unset", "user.signingkey", cwd=repo.clone)


def _missing_file(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    git("config", "user.signingkey", str(key.key.parent / "no-such-key"), cwd=repo.clone)


def _relative(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    git("config", "user.signingkey", "keys/id_ed25519", cwd=repo.clone)


def _unknown_format(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    git("config", "gpg.format", "pgp", cwd=repo.clone)


def _missing_program(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    git("config", "gpg.ssh.program", "no-such-ssh-keygen", cwd=repo.clone)


def _gpg_without_keys(repo: GitOpsRepo, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("gpg")
    home = key.key.parent / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))  # an empty keyring
    git("config", "gpg.format", "openpgp", cwd=repo.clone)
    git("config", "--unset", "user.signingkey", cwd=repo.clone)


REFUSALS: dict[str, tuple[Callable[[GitOpsRepo, SigningKey, pytest.MonkeyPatch], None], str]] = {
    "no user.signingkey": (_unset_key, "user.signingkey is not set"),
    "key file missing": (_missing_file, "does not exist"),
    "relative key path": (_relative, "relative path"),
    "unknown gpg.format": (_unknown_format, "gpg.format is 'pgp'"),
    "signing program missing": (_missing_program, "'no-such-ssh-keygen'"),
    "gpg without a secret key": (_gpg_without_keys, "gpg has no secret key for any key"),
}


ARGVS = {
    "direct": ("bump-overlay", "stage", "prod", "T4", "--direct"),
    "pr": ("bump-overlay", "prod", "T4"),
    "revert": ("rollback", "dev", "--revert"),
}
# git itself refuses an unknown gpg.format in every command (rollback's history walk first).
CASES = [
    (argv, case) for argv in ARGVS for case in REFUSALS if (argv, case) != ("revert", "unknown gpg.format")
]


@pytest.mark.parametrize(("argv", "case"), CASES, ids=[f"{a}-{c}" for a, c in CASES])
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_git_that_cannot_sign_is_refused_with_nothing_changed(  # noqa: PLR0917 - pytest passes fixtures positionally
    repo: GitOpsRepo,
    key: SigningKey,
    run_cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    dry_run: bool,
    argv: str,
) -> None:
    enable_signing(repo, key, ("dev", "prod"))
    configure, expected = REFUSALS[case]
    configure(repo, key, monkeypatch)
    state = repo.snapshot()
    args = [repo.tags[4] if a == "T4" else a for a in ARGVS[argv]]
    result = run_cli(*args, *(["--dry-run"] if dry_run else []), "--json", cwd=repo.clone)
    assert result.code == 2, result.err
    error = _json(result.out)["error"]
    assert expected in error
    assert "\n" not in error
    assert "Traceback" not in result.err
    assert repo.snapshot() == state  # remote refs, local refs, worktrees, the user's files
    assert " worktree add " not in result.err  # refused before the worktree was made, dry run too


def test_signing_that_fails_at_the_commit_is_refused_before_the_push(
    repo: GitOpsRepo, key: SigningKey, run_cli: CliRunner
) -> None:
    """What the pre-check cannot see (here a key file that is no key) fails at `git commit -S`:
    exit 2 in one line, and nothing was pushed or left behind."""
    enable_signing(repo, key, ("prod",))
    garbage = key.key.parent / "not-a-key"
    garbage.write_text("this is not an ssh key\n", encoding="utf-8")
    git("config", "user.signingkey", str(garbage), cwd=repo.clone)
    state = repo.snapshot()
    for argv in (("--direct",), (), ("--no-push",)):
        result = run_cli("bump-overlay", "prod", repo.tags[4], *argv, "--json", cwd=repo.clone)
        assert result.code == 2, result.err
        error = _json(result.out)["error"]
        assert error.startswith("git could not sign the commit (")
        assert "nothing was pushed" in error
        assert "\n" not in error
        assert repo.snapshot() == state


@pytest.mark.parametrize("argv", [("bump-overlay", "dev", "T4", "--direct"), ("rollback", "dev", "--revert")])
def test_a_users_own_commit_gpgsign_that_cannot_sign_is_exit_2(
    repo: GitOpsRepo, run_cli: CliRunner, argv: tuple[str, ...]
) -> None:
    """No sign-commits, but the user's commit.gpgSign = true with a key git cannot use: exit 2, not 1."""
    git("config", "commit.gpgSign", "true", cwd=repo.clone)
    git("config", "gpg.format", "ssh", cwd=repo.clone)
    git("config", "user.signingkey", str(repo.clone.parent / "no-such-key"), cwd=repo.clone)
    state = repo.snapshot()
    result = run_cli(*(repo.tags[4] if a == "T4" else a for a in argv), "--json", cwd=repo.clone)
    assert result.code == 2, result.err
    assert _json(result.out)["error"].startswith("git could not sign the commit (")
    assert repo.snapshot() == state
