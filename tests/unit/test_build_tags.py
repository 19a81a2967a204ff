"""The build tag rules as a table: no git, no GitHub, no processes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks.errors import UsageError
from dex_tasks.gitops import build_tags
from dex_tasks.gitops.build_tags import GitState, compute

if TYPE_CHECKING:
    from pathlib import Path

MERGE = "f" * 40  # what GITHUB_SHA is on pull_request: GitHub's merge commit, never the PR's
HEAD = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
LOCAL = "abcdef0123456789abcdef0123456789abcdef01"


def pr_event(number: int = 42, labels: tuple[str, ...] = (), head: str = HEAD) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head, "ref": "feature"},
            "labels": [{"id": i, "name": name} for i, name in enumerate(labels)],
        },
    }


def local_git(head: str = LOCAL, dirty: tuple[str, ...] = ()) -> GitState:
    return GitState(head=head, dirty_paths=dirty)


def no_git() -> GitState:
    raise AssertionError("git must not be asked in CI")


CASES: list[tuple[str, dict[str, str], dict[str, Any] | None, dict[str, Any], tuple[str, ...]]] = [
    (
        "push to main",
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": HEAD},
        None,
        {},
        ("sha-1a2b3c4d", "latest"),
    ),
    (
        "push to dev",
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/dev", "GITHUB_SHA": HEAD},
        None,
        {},
        ("sha-1a2b3c4d",),
    ),
    (
        "push of a tag named main is not the branch",
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/main", "GITHUB_SHA": HEAD},
        None,
        {},
        ("sha-1a2b3c4d",),
    ),
    (
        "workflow_dispatch on main",
        {"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": HEAD},
        {"inputs": {}},
        {},
        ("sha-1a2b3c4d", "latest"),
    ),
    (
        "pull_request without preview label: PR head, not the merge commit",
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge", "GITHUB_SHA": MERGE},
        pr_event(labels=("bug",)),
        {},
        ("sha-1a2b3c4d",),
    ),
    (
        "pull_request with preview label",
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge", "GITHUB_SHA": MERGE},
        pr_event(labels=("bug", "preview")),
        {},
        ("sha-1a2b3c4d", "pr-42"),
    ),
    (
        "pull_request_target with preview label (GITHUB_SHA is the base head there)",
        {"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": MERGE},
        pr_event(number=7, labels=("preview",)),
        {},
        ("sha-1a2b3c4d", "pr-7"),
    ),
    (
        "--pr on a PR without the label",
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge", "GITHUB_SHA": MERGE},
        pr_event(),
        {"pr": 42},
        ("sha-1a2b3c4d", "pr-42"),
    ),
    (
        "extra tags in order, duplicates dropped",
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": HEAD},
        None,
        {"extra": ("latest", "sha-0123456789", "pr-5")},
        ("sha-1a2b3c4d", "latest", "sha-0123456789", "pr-5"),
    ),
    (
        "upper-case GITHUB_SHA is normalised",
        {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/dev", "GITHUB_SHA": HEAD.upper()},
        None,
        {},
        ("sha-1a2b3c4d",),
    ),
]


@pytest.mark.parametrize(
    ("env", "event", "kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_ci_events(
    env: dict[str, str], event: dict[str, Any] | None, kwargs: dict[str, Any], expected: tuple[str, ...]
) -> None:
    result = compute(env, default_branch="main", event=event, git_state=no_git, **kwargs)
    assert result.tags == expected
    assert result.sha == "sha-1a2b3c4d"
    assert result.commit == HEAD
    assert MERGE[:8] not in "".join(result.tags)
    assert [tag for tag, _ in result.reasons] == list(expected)


def test_default_branch_from_config() -> None:
    env = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/trunk", "GITHUB_SHA": HEAD}
    assert compute(env, default_branch="trunk").tags == ("sha-1a2b3c4d", "latest")
    assert compute(env, default_branch="main").tags == ("sha-1a2b3c4d",)


def test_pull_request_source_and_number() -> None:
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE}
    result = compute(env, default_branch="main", event=pr_event(labels=("preview",)))
    assert result.source == "pull_request.head.sha"
    assert result.pr == 42
    assert result.event == "pull_request"
    assert "preview" in result.reason("pr-42")


@pytest.mark.parametrize(
    "event",
    [None, {}, {"pull_request": {}}, {"pull_request": {"head": {}}}, {"pull_request": {"head": {"sha": ""}}}],
)
def test_pull_request_without_head_sha_refuses(event: dict[str, Any] | None) -> None:
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": MERGE}
    with pytest.raises(UsageError, match="merge commit"):
        compute(env, default_branch="main", event=event)


def test_local_clean_uses_git_head_and_never_latest() -> None:
    result = compute({}, default_branch="main", git_state=local_git)
    assert result.tags == ("sha-abcdef01",)
    assert result.source == "git HEAD"
    assert not result.dirty


def test_local_dirty_refuses_unless_allowed() -> None:
    paths = tuple(f"file{i}.py" for i in range(7))
    with pytest.raises(UsageError, match=r"uncommitted changes \(file0.py, .* and 2 more\).*--allow-dirty"):
        compute({}, default_branch="main", git_state=lambda: local_git(dirty=paths))
    result = compute({}, default_branch="main", git_state=lambda: local_git(dirty=paths), allow_dirty=True)
    assert result.tags == ("sha-abcdef01",)
    assert result.dirty


def test_local_pr_flag() -> None:
    assert compute({}, default_branch="main", git_state=local_git, pr=9).tags == ("sha-abcdef01", "pr-9")


def test_no_commit_anywhere() -> None:
    with pytest.raises(UsageError, match="GITHUB_SHA"):
        compute({}, default_branch="main")


@pytest.mark.parametrize("bad", ["v1.0", "sha-XYZ", "sha-123", "pr-0", "Latest", "", "main"])
def test_bad_extra_tag_is_refused_before_git(bad: str) -> None:
    with pytest.raises(UsageError):
        compute({}, default_branch="main", git_state=no_git, extra=(bad,))


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_pr_number(bad: int) -> None:
    with pytest.raises(UsageError, match="pull request number"):
        compute({"GITHUB_SHA": HEAD}, default_branch="main", pr=bad)


def test_bad_github_sha() -> None:
    with pytest.raises(UsageError, match="not a commit sha"):
        compute({"GITHUB_SHA": "main"}, default_branch="main")


def test_read_event(tmp_path: Path) -> None:
    assert build_tags.read_event({}) is None
    path = tmp_path / "event.json"
    path.write_text(json.dumps(pr_event()), encoding="utf-8")
    assert build_tags.read_event({"GITHUB_EVENT_PATH": str(path)}) == pr_event()
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid JSON"):
        build_tags.read_event({"GITHUB_EVENT_PATH": str(path)})
    path.write_text("[1]", encoding="utf-8")
    with pytest.raises(UsageError, match="JSON object"):
        build_tags.read_event({"GITHUB_EVENT_PATH": str(path)})
    with pytest.raises(UsageError, match="cannot read"):
        build_tags.read_event({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")})
