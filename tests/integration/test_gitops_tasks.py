"""bump-overlay, promote, rollback and history against real git (a bare origin in tmp_path)."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import proc
from dex_tasks.config import load
from dex_tasks.gitops import state
from dex_tasks.tasks import Context
from dex_tasks.tasks.promote import _pr_body
from tests.gitops_fixtures import GitOpsRepo, build, overlay_path, overlay_text, without_tmp_paths
from tests.helpers import git

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

pytestmark = pytest.mark.timeout(120)


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _trailers(message: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Dex-"):
            found.setdefault(key, []).append(value)
    return found


# -- bump-overlay --------------------------------------------------------------------------------


def test_bump_dev_pushes_a_branch_and_leaves_the_user_alone(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    dev_before = repo.head("dev")
    t4 = repo.tags[4]
    result = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    branch = f"dex/bump-dev-{t4}"
    assert data["changed"] is True
    assert data["env"] == "dev"
    assert data["envs"] == ["dev"]
    assert data["tag"] == t4
    assert data["previous_tag"] == repo.tags[3]
    assert data["base"] == "dev"
    assert data["branch"] == branch
    assert data["pushed"] is True
    assert data["pr_url"] is None  # no token in the hermetic environment
    # A local origin has no compare page: say what to open, in words (regression: "open the PR at a PR from").
    assert f"no GitHub token (GITHUB_TOKEN or GH_TOKEN): open a PR from {branch} to dev" in result.err
    # The base branch did not move; the branch holds exactly one commit on top of it.
    assert repo.head("dev") == dev_before
    assert repo.head(branch) == data["commit"]
    assert git("rev-parse", f"{branch}^", cwd=repo.origin) == dev_before
    assert repo.tag("dev", branch) == t4
    assert repo.subject(branch) == f"chore: update dev image to {t4}"
    trailers = _trailers(repo.message(branch))
    assert trailers == {
        "Dex-Action": ["bump"], "Dex-Env": ["dev"], "Dex-Tag": [t4], "Dex-Previous-Tag": [repo.tags[3]],
        "Dex-Registry-Check": ["off"],  # the fixture's tags are in no registry (gitops_fixtures.PYPROJECT)
    }  # fmt: skip
    # The diff is exactly the one line.
    diff = git("diff", "--unified=0", f"{branch}^", branch, cwd=repo.origin)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        f"-    newTag: {repo.tags[3]}  # updated by CD",
        f"+    newTag: {t4}  # updated by CD",
    ]
    after = repo.snapshot()
    # Only the remote gained the branch; the user's clone is byte-for-byte as it was.
    for key in before:
        if key not in {"origin_refs", "clone_refs"}:
            assert after[key] == before[key], key
    assert [line for line in after["clone_refs"].splitlines() if "refs/heads/" in line] == [
        line for line in before["clone_refs"].splitlines() if "refs/heads/" in line
    ]


def test_bump_is_idempotent_when_the_branch_is_rerun(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    first = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    assert first.code == 0, first.err
    second = run_cli("bump-overlay", "dev", t4, "--json", cwd=repo.clone)
    # The base is still not at the tag (the PR is not merged): the branch is rebuilt and re-pushed
    # with --force-with-lease over our own commit, not refused.
    assert second.code == 0, second.err
    assert repo.head(f"dex/bump-dev-{t4}") == _json(second.out)["commit"]


def test_bump_stage_and_prod_in_one_commit(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    main_before = repo.head("main")
    result = run_cli("bump-overlay", "stage", "prod", t4, "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    branch = f"dex/bump-stage-prod-{t4}"
    assert data["branch"] == branch
    assert data["base"] == "main"
    assert data["env"] == "stage/prod"
    assert data["envs"] == ["stage", "prod"]
    assert data["previous_tags"] == {"stage": repo.tags[1], "prod": repo.tags[0]}
    assert repo.head("main") == main_before
    assert git("rev-parse", f"{branch}^", cwd=repo.origin) == main_before
    assert repo.tag("stage", branch) == t4
    assert repo.tag("prod", branch) == t4
    assert repo.subject(branch) == f"chore: update stage/prod image to {t4}"
    trailers = _trailers(repo.message(branch))
    assert trailers["Dex-Env"] == ["stage", "prod"]
    assert trailers["Dex-Previous-Tag"] == [repo.tags[1], repo.tags[0]]


def test_bump_envs_on_different_branches_is_refused(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", "stage", repo.tags[4], cwd=repo.clone)
    assert result.code == 2
    assert "run bump-overlay once per branch" in result.err
    assert repo.snapshot() == before


def test_bump_direct_commits_to_the_base_branch(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    dev_before = repo.head("dev")
    result = run_cli("bump-overlay", "dev", t4, "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["branch"] == "dev"
    assert data["pushed"] is True
    assert repo.head("dev") == data["commit"]
    assert git("rev-parse", "dev^", cwd=repo.origin) == dev_before
    assert repo.tag("dev") == t4
    assert repo.remote_branches() == ["dev", "main"]


def test_bump_no_push_leaves_a_local_branch(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", t4, "--no-push", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    branch = f"dex/bump-dev-{t4}"
    assert data["pushed"] is False
    assert data["branch"] == branch
    assert f"on local branch {branch}" in result.err
    assert git("rev-parse", branch, cwd=repo.clone) == data["commit"]
    after = repo.snapshot()
    assert after["origin_refs"] == before["origin_refs"]  # nothing pushed
    for key in ("head", "status", "index", "worktree_diff", "files", "worktrees", "worktree_dirs"):
        assert after[key] == before[key], key


def test_bump_to_the_current_tag_is_a_no_op(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("bump-overlay", "dev", repo.tags[3], "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["changed"] is False
    assert data["commit"] is None
    assert data["pushed"] is False
    assert "nothing to do" in result.err
    assert repo.snapshot() == before


def test_dry_run_writes_nothing(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t4 = repo.tags[4]
    before = repo.snapshot()
    for argv in (
        ("bump-overlay", "dev", t4),
        ("bump-overlay", "stage", "prod", t4, "--direct"),
        ("bump-overlay", "dev", t4, "--no-push"),
        ("promote", "stage", "prod", "--verify", "git"),
        ("rollback", "stage"),
        ("rollback", "dev", "--revert"),
    ):
        result = run_cli(*argv, "--dry-run", "--json", cwd=repo.clone)
        assert result.code == 0, (argv, result.err)
        data = _json(result.out)
        assert data["dry_run"] is True
        assert data["changed"] is True
        assert data["commit"] is None
        assert data["pushed"] is False
        assert "dry-run: not run" in result.err
        assert repo.snapshot() == before, argv
    # The exact diff is printed.
    result = run_cli("bump-overlay", "dev", t4, "--dry-run", cwd=repo.clone)
    assert f"-    newTag: {repo.tags[3]}  # updated by CD" in result.out
    assert f"+    newTag: {t4}  # updated by CD" in result.out
    # The real run's push, -c option and lease included (regression: the plan was rebuilt by hand
    # and had drifted to a bare --force-with-lease without hooksPath).
    branch = f"dex/bump-dev-{t4}"
    push = (
        f"$ git -C <tmp>/wt -c core.hooksPath=<tmp>/no-hooks push --porcelain --no-verify "
        f"--force-with-lease=refs/heads/{branch}: origin HEAD:refs/heads/{branch}    # dry-run: not run"
    )
    assert push in [without_tmp_paths(line) for line in result.err.splitlines()], result.err


FETCHES = [
    # (argv, the branches fetched, each once)
    (("promote", "stage", "prod", "--verify", "git"), ["main"]),
    (("promote", "dev", "stage", "--verify", "git"), ["dev", "main"]),
    (("rollback", "stage"), ["main"]),
    (("bump-overlay", "dev", "TAG"), ["dev"]),
]


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
@pytest.mark.parametrize(("argv", "branches"), FETCHES, ids=[" ".join(a) for a, _ in FETCHES])
def test_each_branch_is_fetched_once_per_run(
    repo: GitOpsRepo, run_cli: CliRunner, argv: tuple[str, ...], branches: list[str], dry_run: bool
) -> None:
    # Regression: promote/rollback fetched the base branch to read the tag, then workflow.apply
    # fetched it again (3 identical fetches for `promote stage prod --dry-run`).
    argv = tuple(repo.tags[4] if arg == "TAG" else arg for arg in argv)
    result = run_cli(*argv, *(["--dry-run"] if dry_run else []), cwd=repo.clone)
    assert result.code == 0, result.err
    fetched = [line.rsplit(":refs/remotes/origin/", 1)[1] for line in result.err.splitlines()
               if " fetch --no-tags" in line and ":refs/remotes/origin/" in line]  # fmt: skip
    assert sorted(fetched) == branches, result.err


# -- promote -------------------------------------------------------------------------------------


def test_promote_stage_to_prod(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t0, t1 = repo.tags[0], repo.tags[1]
    result = run_cli("promote", "stage", "prod", "--verify", "git", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    branch = f"promote-prod-{t1}"
    assert data["from_env"] == "stage"
    assert data["env"] == "prod"
    assert data["tag"] == t1
    assert data["previous_tag"] == t0
    assert data["branch"] == branch
    assert repo.tag("prod", branch) == t1
    assert repo.subject(branch) == f"chore: promote {t1} to prod"
    trailers = _trailers(repo.message(branch))
    assert trailers["Dex-Action"] == ["promote"]
    assert trailers["Dex-From-Env"] == ["stage"]
    assert "Dex-Forced" not in trailers


def test_promote_default_verify_says_only_git_was_checked(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    result = run_cli("promote", "stage", "prod", "--dry-run", cwd=repo.clone)
    assert result.code == 0, result.err
    assert result.out.count("only git was checked") + result.err.count("only git was checked") == 1


def test_promote_refused_when_tag_is_not_what_from_runs(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("promote", "stage", "prod", repo.tags[2], "--verify", "git", "--json", cwd=repo.clone)
    assert result.code == 1
    assert f"{repo.tags[2]} is not what stage runs" in result.err
    assert _json(result.out)["changed"] is False
    assert _json(result.out)["previous_tag"] == repo.tags[0]  # what prod runs (was always None)
    assert repo.snapshot() == before


def test_promote_force_is_recorded(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t2 = repo.tags[2]
    result = run_cli("promote", "stage", "prod", t2, "--force", "--verify", "git", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["forced"] is True
    message = repo.message(f"promote-prod-{t2}")
    assert _trailers(message)["Dex-Forced"] == ["true"]
    assert f"Forced: {t2} is not what stage runs" in message


def test_promote_to_a_non_adjacent_env_is_refused(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("promote", "dev", "prod", "--verify", "git", cwd=repo.clone)
    assert result.code == 2
    assert "the next environment after dev is stage" in result.err
    assert repo.snapshot() == before


def test_promote_pr_body_lists_the_app_commits(repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch) -> None:

    cfg = load(repo.clone)
    ctx = Context(task="promote", config=cfg, cwd=repo.clone)
    body = _pr_body(ctx, state.open_repo(cfg), "stage", "prod", old=repo.tags[0], new=repo.tags[3], forced=[])
    assert "- app change 3 (" in body
    assert "- app change 1 (" in body
    assert "dex app" not in body
    body = _pr_body(
        ctx, state.open_repo(cfg), "stage", "prod", old=repo.tags[0], new="sha-deadbeef", forced=[]
    )
    assert "not both in this repository's history" in body


def test_promote_pr_body_from_a_shallow_clone(repo: GitOpsRepo, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow-body"
    git("clone", "--quiet", "--depth", "1", repo.origin.resolve().as_uri(), str(shallow), cwd=tmp_path)
    cfg = load(shallow)
    ctx = Context(task="promote", config=cfg, cwd=shallow)
    body = _pr_body(ctx, state.open_repo(cfg), "stage", "prod", old=repo.tags[0], new=repo.tags[2], forced=[])
    assert "- app change 2 (" in body
    assert "- app change 1 (" in body


# -- rollback ------------------------------------------------------------------------------------


def test_rollback_to_last_known_good_skips_rolled_back_tags(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t0, t1 = repo.tags[0], repo.tags[1]
    main_before = repo.head("main")
    result = run_cli("rollback", "stage", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    # Stage runs T1; T2 was rolled back from (known bad), so the last known good is T0.
    assert data["tag"] == t0
    assert data["previous_tag"] == t1
    assert data["branch"] == "main"
    assert data["pushed"] is True  # --direct is the default
    assert repo.tag("stage") == t0
    assert git("rev-parse", "main^", cwd=repo.origin) == main_before
    assert repo.subject("main") == f"fix: rollback stage to {t0}"
    trailers = _trailers(repo.message("main"))
    assert trailers["Dex-Action"] == ["rollback"]
    assert trailers["Dex-Previous-Tag"] == [t1]


def test_rollback_with_a_tag_never_deployed_is_refused(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    before = repo.snapshot()
    result = run_cli("rollback", "stage", repo.tags[4], cwd=repo.clone)
    assert result.code == 2
    assert "was never deployed to stage" in result.err
    assert repo.snapshot() == before


def test_rollback_with_a_tag_and_pr(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    t2 = repo.tags[2]
    result = run_cli("rollback", "dev", t2, "--pr", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["branch"] == f"rollback-dev-{t2}"
    assert data["base"] == "dev"
    assert repo.tag("dev", f"rollback-dev-{t2}") == t2
    assert repo.tag("dev") == repo.tags[3]


def test_rollback_to_a_known_bad_tag_by_name_warns(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # stage was rolled back from T2 before: asked for by name it is allowed, but not silently.
    result = run_cli("rollback", "stage", repo.tags[2], "--dry-run", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    assert f"warning: {repo.tags[2]} was rolled back from before in stage (known bad)" in result.err
    quiet = run_cli("rollback", "stage", repo.tags[0], "--dry-run", "--json", cwd=repo.clone)
    assert quiet.code == 0, quiet.err
    assert "known bad" not in quiet.err


def test_rollback_revert(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    last = repo.head("dev")
    result = run_cli("rollback", "dev", "--revert", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    data = _json(result.out)
    assert data["tag"] == repo.tags[2]
    assert data["previous_tag"] == repo.tags[3]
    assert data["revert"] == last
    assert repo.tag("dev") == repo.tags[2]
    message = repo.message("dev")
    assert message.startswith('Revert "chore: update dev image to')
    assert f"This reverts commit {last}." in message
    assert _trailers(message)["Dex-Action"] == ["rollback"]


def test_rollback_revert_dry_run_shows_the_message_the_real_run_writes(
    repo: GitOpsRepo, run_cli: CliRunner
) -> None:
    # Regression: the dry-run printed "fix: rollback dev to ..." while the real commit is git
    # revert's 'Revert "..."' with "This reverts commit ...".
    planned = run_cli("rollback", "dev", "--revert", "--dry-run", "--json", cwd=repo.clone)
    assert planned.code == 0, planned.err
    shown = planned.err.split("commit message:\n", 1)[1].split("\n$ ", 1)[0]
    result = run_cli("rollback", "dev", "--revert", cwd=repo.clone)
    assert result.code == 0, result.err
    written = repo.message("dev").strip("\n")
    assert [line.strip() for line in shown.splitlines()] == [line.strip() for line in written.splitlines()]


def test_history_table_and_json(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    result = run_cli("history", "stage", cwd=repo.clone)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["TAG", "DIGEST", "COMMIT", "DATE", "AUTHOR", "ACTION", "SIGNED", "SUBJECT"]
    assert lines[2].startswith(repo.tags[1])
    assert "rollback" in lines[2]
    result = run_cli("history", "stage", "--limit", "3", "--json", cwd=repo.clone)
    data = _json(result.out)
    assert data["task"] == "history"
    assert data["env"] == "stage"
    entries = data["entries"]
    assert isinstance(entries, list)
    assert [e["tag"] for e in entries] == [repo.tags[1], repo.tags[2], repo.tags[1]]
    assert [e["action"] for e in entries] == ["rollback", "bump", "bump"]
    keys = {"tag", "commit", "date", "author", "subject", "action", "digest", "signed", "verified"}
    assert set(entries[0]) == keys
    assert entries[0]["digest"] is None  # no Dex-Digest trailer, no pinned digest in the file
    assert not any(e["signed"] or e["verified"] for e in entries)
    full = _json(run_cli("history", "stage", "--json", cwd=repo.clone).out)["entries"]
    assert isinstance(full, list)
    assert full[-1]["action"] == "manual"
    assert full[-1]["tag"] == repo.tags[0]


def test_history_follows_origin_and_fetches_only_when_it_moved(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    def history() -> tuple[list[object], list[str]]:
        result = run_cli("history", "stage", "--limit", "2", "--json", cwd=repo.clone)
        assert result.code == 0, result.err
        entries = _json(result.out)["entries"]
        assert isinstance(entries, list)
        return [e["tag"] for e in entries], [line for line in result.err.splitlines() if " fetch " in line]

    tags, fetches = history()
    assert tags == [repo.tags[1], repo.tags[2]]
    tags, fetches = history()  # origin has not moved: ls-remote says so, nothing is fetched
    assert (tags, fetches) == ([repo.tags[1], repo.tags[2]], [])
    # Another writer deploys to stage on origin; the clone's tracking ref is now behind it.
    repo.race("main", overlay_path("stage"), overlay_text("stage", "sha-feedf00d"))
    tags, fetches = history()
    assert tags == ["sha-feedf00d", repo.tags[1]]
    assert len(fetches) == 1
    assert git("rev-parse", "refs/remotes/origin/main", cwd=repo.clone) == git(
        "rev-parse", "HEAD", cwd=repo.writer
    )


def test_history_without_a_tracking_ref_fetches_it_first(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # No origin/main in the clone yet: nothing local to read beside ls-remote, so the fetch comes
    # first (one), and the history is origin's.
    git("update-ref", "-d", "refs/remotes/origin/main", cwd=repo.clone)
    result = run_cli("history", "stage", "--limit", "2", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    entries = _json(result.out)["entries"]
    assert isinstance(entries, list)
    assert [e["tag"] for e in entries] == [repo.tags[1], repo.tags[2]]
    assert len([line for line in result.err.splitlines() if " fetch " in line]) == 1
    assert git("rev-parse", "refs/remotes/origin/main", cwd=repo.clone) == git(
        "rev-parse", "HEAD", cwd=repo.writer
    )


def test_shallow_clone_works(repo: GitOpsRepo, run_cli: CliRunner, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    git("clone", "--quiet", "--depth", "1", repo.origin.resolve().as_uri(), str(shallow), cwd=tmp_path)
    assert git("rev-parse", "--is-shallow-repository", cwd=shallow) == "true"
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=shallow)
    assert result.code == 0, result.err
    assert repo.tag("dev") == repo.tags[4]
    result = run_cli("history", "stage", "--json", cwd=shallow)
    assert result.code == 0, result.err
    assert len(_json(result.out)["entries"]) == 4  # type: ignore[arg-type]
    result = run_cli("rollback", "stage", "--json", cwd=shallow)
    assert result.code == 0, result.err
    assert repo.tag("stage") == repo.tags[0]


def test_overlay_that_does_not_render_is_refused(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    # Someone broke prod's base reference on main: the render check must stop the commit.
    path = repo.writer / overlay_path("prod")
    git("checkout", "--quiet", "main", cwd=repo.writer)
    path.write_text(path.read_text(encoding="utf-8").replace("../../base", "../../missing"), encoding="utf-8")
    git("commit", "--quiet", "-am", "chore: break prod", cwd=repo.writer)
    git("push", "--quiet", "origin", "main", cwd=repo.writer)
    before = repo.snapshot()
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 2
    assert "no longer builds with kubectl kustomize" in result.err
    after = repo.snapshot()
    assert after["origin_refs"] == before["origin_refs"]
    assert after["worktrees"] == before["worktrees"]
    assert after["worktree_dirs"] == before["worktree_dirs"]


@pytest.mark.parametrize("user_gogc", [None, "75"])
def test_render_check_runs_kubectl_with_fewer_collections_unless_the_user_set_gogc(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, user_gogc: str | None
) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    if user_gogc is None:
        monkeypatch.delenv("GOGC", raising=False)
    else:
        monkeypatch.setenv("GOGC", user_gogc)
    seen: list[str | None] = []
    real = proc.run

    def run(argv: tuple[str, ...], **kwargs: Any) -> proc.Result:
        if argv[:2] == ("kubectl", "kustomize"):
            env = kwargs.get("env") or {}
            seen.append(env.get("GOGC", os.environ.get("GOGC")))
        return real(argv, **kwargs)

    monkeypatch.setattr(proc, "run", run)
    result = run_cli("bump-overlay", "prod", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert seen == ["400" if user_gogc is None else user_gogc]
    assert repo.tag("prod") == repo.tags[4]


def test_tag_in_git(repo: GitOpsRepo) -> None:
    cfg = load(repo.clone)
    assert state.tag_in_git(cfg, "stage") == repo.tags[1]
    assert state.tag_in_git(cfg, "dev") == repo.tags[3]
    assert state.tag_in_git(cfg, "prod", fetch=False) == repo.tags[0]
    repo.race("main", overlay_path("prod"), overlay_text("prod", repo.tags[4]))
    assert state.tag_in_git(cfg, "prod", fetch=False) == repo.tags[0]  # not fetched: the old tip
    assert state.tag_in_git(cfg, "prod") == repo.tags[4]


def test_pyproject_in_a_subdirectory(tmp_path: Path, run_cli: CliRunner) -> None:
    # A monorepo: [tool.dex] lives in app/, the overlays under app/infra/... in the same repo.
    repo = build(tmp_path)
    w = repo.writer
    git("checkout", "--quiet", "dev", cwd=w)
    (w / "app").mkdir()
    git("mv", "infra", "app/infra", cwd=w)
    git("mv", "pyproject.toml", "app/pyproject.toml", cwd=w)
    git("commit", "--quiet", "-m", "chore: move into app/", cwd=w)
    git("push", "--quiet", "origin", "dev", cwd=w)
    clone = tmp_path / "mono"
    git("clone", "--quiet", "--branch", "dev", str(repo.origin), str(clone), cwd=tmp_path)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", "--json", cwd=clone / "app")
    assert result.code == 0, result.err
    assert f"newTag: {repo.tags[4]}" in (repo.show("dev", "app/" + overlay_path("dev")) or "")


def test_github_actions_outputs(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = repo.clone.parent / "gh-output"
    summary = repo.clone.parent / "gh-summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    lines = outputs.read_text(encoding="utf-8").splitlines()
    assert "changed=true" in lines
    assert f"commit={repo.head('dev')}" in lines
    assert f"tag={repo.tags[4]}" in lines
    assert "pushed=true" in lines
    assert "pr_url=" in lines
    # registry-check = "off" here: no digest (test_gitops_registry has them from a real registry)
    assert {"registry_check=off", "digest=", 'digests={"dev":null}'} <= set(lines)
    assert f"**bump-overlay** dev: set `{repo.tags[4]}`" in summary.read_text(encoding="utf-8")


def test_commit_without_a_configured_identity(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A fresh CI runner: no user.name/user.email anywhere.
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    for name in ("EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert git("log", "-1", "--format=%an <%ae>", "dev", cwd=repo.origin) == (
        "dex-tasks <dex-tasks@users.noreply.github.com>"
    )


def test_promote_twice_second_is_a_no_op(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    first = run_cli("promote", "stage", "prod", "--direct", "--verify", "git", cwd=repo.clone)
    assert first.code == 0, first.err
    before = repo.snapshot()
    second = run_cli("promote", "stage", "prod", "--direct", "--verify", "git", "--json", cwd=repo.clone)
    assert second.code == 0, second.err
    data = json.loads(second.out)
    assert data["changed"] is False
    assert data["commit"] is None
    assert repo.snapshot()["origin_refs"] == before["origin_refs"]


def test_bump_several_envs_one_already_at_the_tag(repo: GitOpsRepo, run_cli: CliRunner) -> None:
    # stage already runs T1, prod runs T0: only prod's file changes, in one commit.
    result = run_cli("bump-overlay", "stage", "prod", repo.tags[1], "--direct", "--json", cwd=repo.clone)
    assert result.code == 0, result.err
    changed = git("diff", "--name-only", "main^", "main", cwd=repo.origin).splitlines()
    assert changed == [overlay_path("prod")]
    assert json.loads(result.out)["previous_tags"] == {"stage": repo.tags[1], "prod": repo.tags[0]}


def test_commit_without_a_configured_identity_in_actions(
    repo: GitOpsRepo, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The same fresh runner inside GitHub Actions: the commit is the Actions bot's, like
    # actions/checkout-based workflows that push.
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for name in ("EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    result = run_cli("bump-overlay", "dev", repo.tags[4], "--direct", cwd=repo.clone)
    assert result.code == 0, result.err
    assert git("log", "-1", "--format=%an <%ae>", "dev", cwd=repo.origin) == (
        "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
    )
