"""A token in origin's URL appears in no process's argv, and still authenticates.

With ``http(s)://user:TOKEN@host/...`` as origin, a plain ``git fetch origin`` starts
``git-remote-http origin http://user:TOKEN@host/...``: the token is in that process's argv, which
every local user can read (``/proc/<pid>/cmdline``, ``ps``). dex-tasks names the URL without its
userinfo and hands git the credential through a helper fed from the environment. The test runs the
real client against a real smart-HTTP server (git http-backend) that demands the credential, and
reads every argv git starts from ``GIT_TRACE`` (run_command lines: the remote helper, the credential
helper) and every argv dex-tasks starts through proc.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import proc
from tests.fakes.git_http import GitHTTPServer
from tests.helpers import git, serving

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("no_push_backoff")]

TOKEN = "ghs_s3cr3tTOKENvalue0123456789"


@pytest.mark.parametrize("userinfo", [f"x-access-token:{TOKEN}", f"dex%2Dbot:{TOKEN}"])
def test_token_in_remote_url_stays_out_of_every_argv(
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, userinfo: str
) -> None:
    user = userinfo.split(":", 1)[0].replace("%2D", "-")
    argvs: list[tuple[str, ...]] = []
    original = proc.run

    def observed(argv: Sequence[str], **kwargs: Any) -> proc.Result:
        argvs.append(tuple(str(arg) for arg in argv))
        return original(argv, **kwargs)

    monkeypatch.setattr(proc, "run", observed)
    started = proc.start

    def observed_start(argv: Sequence[str], **kwargs: Any) -> Any:
        argvs.append(tuple(str(arg) for arg in argv))
        return started(argv, **kwargs)

    monkeypatch.setattr(proc, "start", observed_start)  # history's ls-remote, run beside its log
    trace = tmp_path / "git-trace.log"
    with serving(GitHTTPServer(repo.origin.parent, user=user, password=TOKEN)) as server:
        assert isinstance(server, GitHTTPServer)
        git("remote", "set-url", "origin", server.url("origin.git", userinfo=userinfo), cwd=repo.clone)
        monkeypatch.setenv("GIT_TRACE", str(trace))  # from here on: only what dex-tasks starts
        t4 = repo.tags[4]
        result = run_cli("bump-overlay", "prod", t4, "--direct", "--json", cwd=repo.clone)
        assert result.code == 0, result.err
        assert json.loads(result.out)["pushed"] is True
        assert server.authorized > 0  # the credential did reach the server
        # A PR push (ls-remote for the lease, then push) takes the same way.
        pr = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
        assert pr.code == 0, pr.err
        # history asks origin by ls-remote while it reads the log: with the credential too.
        before_history = len(argvs)
        shown = run_cli("history", "prod", "--limit", "1", "--json", cwd=repo.clone)
        assert any("ls-remote" in argv for argv in argvs[before_history:])  # not vacuous: through start
        assert shown.code == 0, shown.err
        assert [e["tag"] for e in json.loads(shown.out)["entries"]] == [t4]
    assert repo.tag("prod") == t4
    assert f"dex/bump-dev-{t4}" in repo.remote_branches()
    traced = trace.read_text(encoding="utf-8", errors="replace")
    assert "git-remote-http" in traced  # not vacuous: the transport's argv is in the trace
    assert TOKEN not in traced
    assert argvs
    assert not [argv for argv in argvs if any(TOKEN in arg for arg in argv)]
    assert TOKEN not in result.out + result.err + pr.out + pr.err + shown.out + shown.err
    # The user's configuration is as it was: origin keeps its URL, no helper stored the token.
    monkeypatch.delenv("GIT_TRACE")
    assert userinfo in git("remote", "get-url", "origin", cwd=repo.clone)
    assert "credential" not in git("config", "--list", "--local", cwd=repo.clone)


def test_wrong_token_is_exit_2_without_the_token(
    repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path
) -> None:
    with serving(GitHTTPServer(repo.origin.parent, user="x", password="right")) as server:
        assert isinstance(server, GitHTTPServer)
        git("remote", "set-url", "origin", server.url("origin.git", userinfo=f"x:{TOKEN}"), cwd=repo.clone)
        before = repo.snapshot()
        result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    # Refused credentials are configuration, not the network: exit 2 at once, nothing retried.
    assert result.code == 2, result.err
    assert "Authentication failed" in result.err
    assert result.err.count("\n") == 1
    assert TOKEN not in result.err
    assert repo.snapshot() == before
