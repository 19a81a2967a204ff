"""Which tags an image build gets, from the environment it runs in. Pure: no processes, no env reads.

The inputs are passed in (a mapping of environment variables, the GitHub event payload, a callback
for the local git state), so the rules are tested as a table without GitHub or git:

* ``sha-<first 8 of the commit>`` always. The commit is ``GITHUB_SHA``, except on
  ``pull_request``/``pull_request_target`` events, where ``GITHUB_SHA`` is the *merge* commit GitHub
  made on the fly (``pull_request``) or the base branch head (``pull_request_target``) - neither is a
  commit anyone can find in the PR later - so the PR head (``pull_request.head.sha`` of the event
  payload) is used. Locally it is ``git rev-parse HEAD``, and a dirty tree is refused (exit 2) unless
  allowed, because the tag would name a commit that does not contain what was built.
* ``latest`` only when the ref is the default branch (``refs/heads/<default-branch>``) on a
  non-PR event in CI (push, workflow_dispatch, schedule...). A laptop build never moves ``latest``.
* ``pr-<N>`` when asked for (``--pr N``), or on a pull request event whose PR carries the
  ``preview`` label.
* Extra tags, validated like every build tag (``sha-``, ``pr-<N>``, ``latest``; anything else exit 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dex_tasks._untrusted import parse_json
from dex_tasks.errors import UsageError
from dex_tasks.gitops import tags

PR_EVENTS = frozenset({"pull_request", "pull_request_target"})
PREVIEW_LABEL = "preview"
_DIRTY_SHOWN = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class GitState:
    """The local checkout: HEAD commit and whether ``git status --porcelain`` printed anything."""

    head: str
    dirty_paths: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_paths)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildTags:
    """The result: ``tags`` in order (sha tag first), and why each one is there."""

    commit: str
    sha: str
    tags: tuple[str, ...]
    source: str  # where the commit came from: "GITHUB_SHA", "pull_request.head.sha", "git HEAD"
    reasons: tuple[tuple[str, str], ...]  # (tag, why) in tag order
    event: str | None = None
    pr: int | None = None
    dirty: bool = False

    def reason(self, tag: str) -> str:
        return dict(self.reasons).get(tag, "")


def read_event(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The event payload at ``GITHUB_EVENT_PATH``, or None when there is none.

    The only I/O in this module, kept beside the rules because an unreadable payload on a PR event
    must stop the build (exit 2) instead of silently tagging the merge commit.
    """
    path = env.get("GITHUB_EVENT_PATH", "").strip()
    if not path:
        return None
    try:
        data = parse_json(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"GITHUB_EVENT_PATH={path}: cannot read the event payload: {exc.strerror}") from None
    except ValueError as exc:  # invalid or too deeply nested JSON, or not UTF-8
        raise UsageError(f"GITHUB_EVENT_PATH={path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"GITHUB_EVENT_PATH={path}: expected a JSON object")
    return data


def _pull_request(event: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    pull = (event or {}).get("pull_request")
    return pull if isinstance(pull, Mapping) else None


def _pr_head_sha(event_name: str, event: Mapping[str, Any] | None) -> str:
    pull = _pull_request(event)
    head = pull.get("head") if pull else None
    sha = head.get("sha") if isinstance(head, Mapping) else None
    if not isinstance(sha, str) or not sha:
        raise UsageError(
            f"{event_name} event without pull_request.head.sha in the GITHUB_EVENT_PATH payload: "
            "refusing to tag the merge commit GITHUB_SHA"
        )
    return sha


def _pr_number(event: Mapping[str, Any] | None) -> int | None:
    pull = _pull_request(event)
    number = pull.get("number") if pull else None
    if number is None and event is not None:
        number = event.get("number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _has_label(event: Mapping[str, Any] | None, label: str) -> bool:
    pull = _pull_request(event)
    labels = pull.get("labels") if pull else None
    if not isinstance(labels, list):
        return False
    return any(isinstance(item, Mapping) and item.get("name") == label for item in labels)


def compute(
    env: Mapping[str, str],
    *,
    default_branch: str,
    event: Mapping[str, Any] | None = None,
    git_state: Callable[[], GitState] | None = None,
    pr: int | None = None,
    extra: Sequence[str] = (),
    allow_dirty: bool = False,
) -> BuildTags:
    """Compute the build tags. Raises UsageError (exit 2) on anything that would make a tag lie."""
    # Extra tags first: bad input is refused before any other work, git queries included.
    extra_tags = tuple(tags.validate_tag(tag, preview=True, allow_latest=True) for tag in extra)
    pr_from_flag = tags.pr_tag(pr) if pr is not None else None

    event_name = env.get("GITHUB_EVENT_NAME", "").strip() or None
    github_sha = env.get("GITHUB_SHA", "").strip()
    dirty = False
    if event_name in PR_EVENTS:
        commit, source = _pr_head_sha(event_name, event), "pull_request.head.sha"
    elif github_sha:
        commit, source = github_sha, "GITHUB_SHA"
    else:
        if git_state is None:
            raise UsageError("no GITHUB_SHA and no git repository: cannot tell which commit is being built")
        state = git_state()
        if state.dirty and not allow_dirty:
            shown = ", ".join(state.dirty_paths[:_DIRTY_SHOWN])
            more = (
                f" and {len(state.dirty_paths) - _DIRTY_SHOWN} more"
                if len(state.dirty_paths) > _DIRTY_SHOWN
                else ""
            )
            raise UsageError(
                f"the working tree has uncommitted changes ({shown}{more}): the sha tag would name a commit "
                "that is not what gets built; commit or stash them, or pass --allow-dirty"
            )
        commit, source, dirty = state.head, "git HEAD", state.dirty
    commit = commit.strip().lower()
    sha = tags.sha_tag(commit)

    reasons: dict[str, str] = {sha: f"commit {commit[:12]} ({source})"}
    ref = env.get("GITHUB_REF", "").strip()
    if github_sha and event_name not in PR_EVENTS and ref == f"refs/heads/{default_branch}":
        reasons.setdefault(tags.LATEST, f"{event_name or 'build'} on the default branch {default_branch}")

    number = _pr_number(event) if event_name in PR_EVENTS else None
    if pr_from_flag is not None:
        reasons.setdefault(pr_from_flag, "--pr")
    elif number is not None and _has_label(event, PREVIEW_LABEL):
        reasons.setdefault(tags.pr_tag(number), f"pull request #{number} has the {PREVIEW_LABEL!r} label")

    for tag in extra_tags:
        reasons.setdefault(tag, "--tag")

    return BuildTags(
        commit=commit,
        sha=sha,
        tags=tuple(reasons),
        source=source,
        reasons=tuple(reasons.items()),
        event=event_name,
        pr=pr if pr is not None else number,
        dirty=dirty,
    )
