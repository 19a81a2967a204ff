"""Release notes: the app commits between two image tags, grouped by conventional-commit type.

What a promotion ships is the app commits reachable from the tag FROM runs and not from the tag
TO runs (``git log --first-parent TO..FROM`` of the ``sha-<hex>`` tags' commits). Left out:

* overlay commits: any commit with a ``Dex-Action`` trailer (made by dex-tasks), and any commit
  that only touches files under the overlays directory (bumps by hand, merged bump PRs);
* the second parents of merges (``--first-parent``): a merged PR is its merge commit, whose
  subject names the PR number, so a PR is one line, not one line per commit on its branch.

Groups, in order: breaking changes, features, fixes, other (see :mod:`conventional`). PR numbers
(``(#123)`` suffixes, merge-commit subjects) link to the PR; a compare link closes the list.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from dex_tasks.errors import DexError
from dex_tasks.gitops import tags
from dex_tasks.insight import conventional
from dex_tasks.tools import git

if TYPE_CHECKING:
    from pathlib import Path

    from dex_tasks.config import Config
    from dex_tasks.gitops.state import Repo

MAX_COMMITS = 500  # a release note longer than this is not read; the compare link has the rest
GROUPS = (("breaking", "⚠️ Breaking changes"), ("feat", "Features"), ("fix", "Fixes"), ("other", "Other"))
_FIELD, _RECORD = "\x1f", "\x1e"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AppCommit:
    sha: str
    parsed: conventional.Parsed

    def as_json(self) -> dict[str, Any]:
        p = self.parsed
        return {"sha": self.sha, "type": p.type, "scope": p.scope, "subject": p.subject,
                "breaking": p.breaking, "pr": p.pr}  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class Notes:
    old_tag: str | None
    new_tag: str
    commits: tuple[AppCommit, ...] | None  # None: the two commits are not both in this history
    truncated: bool = False
    compare_url: str | None = None
    pr_url: str | None = None  # `<server>/<owner>/<repo>/pull/` when the repository is known

    def markdown(self) -> str:
        return render(self)


def _overlay_only(paths: list[str], overlays: str) -> bool:
    prefix = overlays.rstrip("/") + "/"
    return bool(paths) and all(p.startswith(prefix) for p in paths)


def parse_log(out: str, overlays: str) -> tuple[list[AppCommit], int]:
    """Parse ``git log --format=%x1e%H%x1f%s%x1f%b%x1f --name-only``: app commits, and how many
    were left out."""
    commits: list[AppCommit] = []
    skipped = 0
    for record in out.split(_RECORD):
        if not record.strip():
            continue
        sha, subject, body, names = ([*record.split(_FIELD), "", "", ""])[:4]
        paths = [line.strip() for line in names.splitlines() if line.strip()]
        if "dex-action" in git.parse_trailers(body) or _overlay_only(paths, overlays):
            skipped += 1
            continue
        commits.append(AppCommit(sha=sha.strip(), parsed=conventional.parse(subject, body)))
    return commits, skipped


def app_commits(root: Path, old: str | None, new: str, overlays: str) -> tuple[list[AppCommit], bool]:
    """App commits of ``old..new`` (all of ``new`` when ``old`` is None), newest first; and whether cut."""
    fmt = f"--format={_RECORD}%H{_FIELD}%s{_FIELD}%b{_FIELD}"
    revs = [f"{old}..{new}"] if old else [new]
    out = git.git(
        "log", fmt, "--name-only", "--first-parent", "--diff-merges=first-parent", "--no-renames",
        f"--max-count={MAX_COMMITS + 1}", *revs, "--",
        cwd=root, read_only=True, quiet=True,
    ).stdout  # fmt: skip
    commits, _ = parse_log(out, overlays)
    records = out.count(_RECORD)
    return commits[:MAX_COMMITS], records > MAX_COMMITS


def overlays_dir(cfg: Config, repo: Repo) -> str:
    return str(PurePosixPath(repo.prefix) / PurePosixPath(PurePosixPath(cfg.overlays).as_posix()))


def _links(root: Path) -> tuple[str | None, str | None]:
    """``(server/owner/repo, why not)`` for links; none when the origin is not a GitHub repository."""
    from dex_tasks.tools import github  # noqa: PLC0415 - only for links, after the git work

    url = git.remote_url(root) or ""
    try:
        slug = github.repo_from_env(url)
    except DexError:
        return None, None
    return f"{github.server_url(url)}/{slug}", None


def between(cfg: Config, repo: Repo, old_tag: str | None, new_tag: str, *, complete: bool = True) -> Notes:
    """The notes for moving from ``old_tag`` to ``new_tag`` (sha tags; others list nothing).

    ``complete``: a shallow clone (actions/checkout's ``--depth 1``) that lacks the commits gets
    the default branch's history, once.
    """
    old_sha = tags.sha_of(old_tag) if old_tag else None
    new_sha = tags.sha_of(new_tag)
    old_commit = git.rev_parse(repo.root, old_sha) if old_sha else None
    new_commit = git.rev_parse(repo.root, new_sha) if new_sha else None
    missing = new_commit is None or (old_sha is not None and old_commit is None)
    if new_sha and missing and complete and git.is_shallow(repo.root):
        git.fetch(repo.root, cfg.default_branch, unshallow=True)
        old_commit = git.rev_parse(repo.root, old_sha) if old_sha else None
        new_commit = git.rev_parse(repo.root, new_sha)
    base, _ = _links(repo.root)
    pr_url = f"{base}/pull/" if base else None
    if new_commit is None or (old_sha is not None and old_commit is None) or old_sha is None:
        return Notes(old_tag=old_tag, new_tag=new_tag, commits=None, pr_url=pr_url)
    commits, truncated = app_commits(repo.root, old_commit, new_commit, overlays_dir(cfg, repo))
    compare = f"{base}/compare/{old_commit}...{new_commit}" if base else None
    return Notes(
        old_tag=old_tag, new_tag=new_tag, commits=tuple(commits), truncated=truncated,
        compare_url=compare, pr_url=pr_url,
    )  # fmt: skip


def _line(commit: AppCommit, pr_url: str | None) -> str:
    p = commit.parsed
    text = f"**{p.scope}:** {p.subject}" if p.scope else p.subject
    if p.type and conventional.group(p) in {"breaking", "other"}:
        text = f"{p.type}: {text}"  # the type says what an "other" or breaking change is
    if p.pr is not None:
        text += f" ([#{p.pr}]({pr_url}{p.pr}))" if pr_url else f" (#{p.pr})"
    return f"- {text} ({commit.sha[:8]})"


def render(notes: Notes) -> str:
    """Markdown: a heading, the groups, the compare link."""
    old = notes.old_tag or "(none)"
    if notes.commits is None:
        return (
            f"The commits of `{old}` and `{notes.new_tag}` are not both in this repository's history, "
            "so the change list is not shown."
        )
    lines = [f"### App commits {old}..{notes.new_tag} ({len(notes.commits)})", ""]
    if not notes.commits:
        lines.append("- (none: the new tag is not ahead of the old one, or only overlays changed)")
    for key, title in GROUPS:
        members = [c for c in notes.commits if conventional.group(c.parsed) == key]
        if members:
            lines += [f"#### {title}", ""]
            lines += [_line(c, notes.pr_url) for c in members]
            lines.append("")
    if notes.truncated:
        lines.append(f"(only the newest {MAX_COMMITS} commits are listed)")
    if notes.compare_url:
        lines.append(f"[Compare {old}...{notes.new_tag}]({notes.compare_url})")
    return "\n".join(lines).rstrip("\n")


def pr_section(cfg: Config, repo: Repo, old_tag: str | None, new_tag: str) -> str:
    """The release-notes part of promote's PR body (the one call promote makes)."""
    return between(cfg, repo, old_tag, new_tag).markdown()
