"""The one "edit -> worktree -> commit -> push -> PR" machinery behind bump-overlay, promote and rollback.

A :class:`Change` says *what* to do (set these envs' overlays to a tag, or revert a commit) and
*how to deliver it* (PR branch, straight to the base branch, or a local branch only). :func:`apply`
does it without touching the user's working copy:

1. fetch ``origin/<base>``;
2. in a temporary detached worktree on it, recompute the edit from the file there (so a retry
   after a push race re-applies the *edit* on the new tip, never a stale patch), check that
   ``kubectl kustomize`` still renders ``<image>:<tag>``, commit with ``Dex-*`` trailers (``-S``,
   signed, when an env is in ``sign-commits``; :mod:`dex_tasks.supply.signing` checks before step 1
   that git can sign);
3. push (``--direct``: to the base branch, retried with jittered backoff when the remote moved;
   ``--pr``: to a ``dex``-owned branch with ``--force-with-lease``, then open or update the PR);
4. the worktree is removed on every exit path, Ctrl-C included.

``--dry-run`` takes the same path, so its plan cannot drift from the real run: the read-only
checks run (fetch, lease, branch ownership), every mutating command is built by the same
:mod:`~dex_tasks.tools.git` call and echoed by :mod:`dex_tasks.proc` instead of run, and the
worktree is never created, so files are read with ``git show`` of the base commit it would have
checked out (see :class:`_Tree`). Only the temporary paths and the new commit's id differ.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from dex_tasks import gha, proc
from dex_tasks.errors import DexError, ForeignHostError, GitHubAccessError, RemoteError, UsageError
from dex_tasks.gitops import overlay, paths
from dex_tasks.gitops.state import Repo, open_repo
from dex_tasks.supply import signing
from dex_tasks.tools import git

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

    from dex_tasks.config import Config
    from dex_tasks.gitops.overlay import OverlayEdit
    from dex_tasks.report import Reporter

ATTEMPTS_ENV = "DEX_PUSH_ATTEMPTS"
BACKOFF_ENV = "DEX_PUSH_BACKOFF"
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF = 1.0  # seconds; attempt n waits uniform(0, backoff * 2**n), capped
MAX_BACKOFF = 30.0
# What a dry run names the commit it did not make (e.g. the tip of a --no-push branch).
PLANNED_COMMIT = "<new-commit>"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Change:
    """What to change and how to deliver it."""

    action: str  # Dex-Action trailer: bump | promote | rollback
    envs: tuple[str, ...]
    tag: str  # the tag the envs end at (for a revert: the tag the revert restores)
    base: str
    branch: str  # PR branch / local branch name (ignored for a pushed --direct change)
    subject: str
    body: tuple[str, ...] = ()
    pr_title: str = ""
    # A callable is called only when the PR is opened or updated: promote's body walks the app
    # commits (completing a shallow clone), work a dry run, --direct, --no-push or no token skip.
    pr_body: str | Callable[[], str] = ""
    direct: bool = False
    push: bool = True
    from_env: str | None = None
    forced: bool = False
    revert_commit: str | None = None  # --revert: `git revert` this commit instead of editing
    labels: tuple[str, ...] = ()
    extra_trailers: tuple[str, ...] = ()  # e.g. Dex-Lock-Broken: prod (the deploy controls)
    # env -> the registry's digest of the tag (None: not asked, registry-check off); Dex-Digest trailers
    digests: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    registry_check: str = "off"  # "passed": every digest was resolved; "off": the registry was not asked


@dataclasses.dataclass(kw_only=True)
class Outcome:
    changed: bool
    envs: tuple[str, ...]
    tag: str
    previous_tags: dict[str, str | None]
    base: str
    branch: str | None = None
    commit: str | None = None
    pushed: bool = False
    pr_url: str | None = None
    pr_number: int | None = None
    compare_url: str | None = None
    from_env: str | None = None
    forced: bool = False
    attempts: int = 0
    diff: str = ""
    digests: dict[str, str | None] = dataclasses.field(default_factory=dict)
    registry_check: str = "off"

    def as_json(self) -> dict[str, Any]:
        """The contract's GitOps fields. ``env`` is the one env (or ``stage/prod``), ``envs`` the list."""
        single = len(self.envs) == 1
        data: dict[str, Any] = {
            "changed": self.changed,
            "env": self.envs[0] if single else "/".join(self.envs),
            "envs": list(self.envs),
            "tag": self.tag,
            "previous_tag": self.previous_tags.get(self.envs[0]) if single else _common(self.previous_tags),
            "previous_tags": dict(self.previous_tags),
            "base": self.base,
            "branch": self.branch,
            "commit": self.commit,
            "pushed": self.pushed,
            "pr_url": self.pr_url,
            "pr_number": self.pr_number,
            "compare_url": self.compare_url,
            "forced": self.forced,
            "attempts": self.attempts,
            "digests": {env: self.digests.get(env) for env in self.envs},
            "registry_check": self.registry_check,
        }
        if self.from_env is not None:
            data["from_env"] = self.from_env
        return data


def _common(tags: dict[str, str | None]) -> str | None:
    values = set(tags.values())
    return values.pop() if len(values) == 1 else None


def _attempts() -> int:
    try:
        return max(1, int(os.environ.get(ATTEMPTS_ENV, DEFAULT_ATTEMPTS)))
    except ValueError:
        return DEFAULT_ATTEMPTS


def _backoff(attempt: int) -> float:
    try:
        base = float(os.environ.get(BACKOFF_ENV, DEFAULT_BACKOFF))
    except ValueError:
        base = DEFAULT_BACKOFF
    # Full jitter (AWS architecture blog): concurrent CD jobs racing for the branch spread out.
    return random.uniform(0, min(MAX_BACKOFF, base * 2**attempt))  # noqa: S311 - jitter, not crypto


def _before_push(change: Change, attempt: int) -> None:
    """Hook point between commit and push (tests make a second writer race us here)."""


def trailers(change: Change, previous: dict[str, str | None]) -> list[str]:
    """``Dex-*`` trailers. Several envs: ``Dex-Env`` and ``Dex-Previous-Tag`` repeat, in the same order."""
    lines = [f"Dex-Action: {change.action}"]
    lines += [f"Dex-Env: {env}" for env in change.envs]
    lines.append(f"Dex-Tag: {change.tag}")
    lines += [f"Dex-Previous-Tag: {previous.get(env) or 'none'}" for env in change.envs]
    # One per env in Dex-Env's order, or none at all (registry check off: nothing is known).
    digests = [change.digests.get(env) for env in change.envs]
    if all(digests):
        lines += [f"Dex-Digest: {digest}" for digest in digests]
    if change.registry_check == "off":
        lines.append("Dex-Registry-Check: off")
    if change.from_env:
        lines.append(f"Dex-From-Env: {change.from_env}")
    if change.forced:
        lines.append("Dex-Forced: true")
    lines += change.extra_trailers
    return lines


def message(change: Change, previous: dict[str, str | None], subject: str | None = None) -> str:
    parts = [subject or change.subject]
    if change.body:
        parts.append("\n".join(change.body))
    parts.append("\n".join(trailers(change, previous)))
    return "\n\n".join(parts) + "\n"


# -- planning --------------------------------------------------------------------------------


def _edits(
    cfg: Config, repo: Repo, change: Change, read: Callable[[str], str | None]
) -> list[tuple[str, OverlayEdit]]:
    """Recompute the edit of every env from the file content ``read(path)`` returns."""

    result = []
    for env in change.envs:
        path = repo.overlay_path(cfg, env)
        text = read(path)
        if text is None:
            raise UsageError(f"{path} does not exist on {change.base}: nothing to update for {env}")
        if "\ufffd" in text:
            # Bytes that are not UTF-8 (a cp1252 editor on Windows) were decoded as U+FFFD: writing
            # the edit back would replace them for good. kustomize wants UTF-8 YAML anyway.
            raise UsageError(
                f"{path} on {change.base} is not UTF-8 text: save it as UTF-8; nothing was changed"
            )
        result.append((env, _edit(cfg, env, change, text, path)))
    return result


def _edit(cfg: Config, env: str, change: Change, text: str, path: str) -> OverlayEdit:
    """``newTag``; for a ``pin-digest`` env also ``digest`` (one edit, two byte-exact lines)."""
    image = cfg.kustomize_image_name
    if env not in cfg.pin_digest:
        return overlay.set_tag(text, image, change.tag, path=path)
    digest = change.digests.get(env)
    if digest is None:
        # Moving only the tag would leave the old digest in charge: kustomize pulls the digest.
        raise UsageError(
            f"{env} is in [tool.dex] pin-digest, so its overlay needs the digest of {change.tag}, "
            "which is unknown with the registry check off; nothing was changed"
        )
    tagged = overlay.set_tag(text, image, change.tag, path=path, pinned=True)
    pinned = overlay.set_digest(tagged.new_text, image, digest, path=path)
    return dataclasses.replace(pinned, old_text=text, previous_tag=tagged.previous_tag)


def rendered_image(cfg: Config, env: str, tag: str, digest: str | None) -> tuple[str, ...]:
    """What ``kubectl kustomize`` renders for the env: ``<image>:<tag>``, or for a pin-digest env
    ``<image>:<tag>@<digest>`` (kustomize 5 keeps the tag; older ones render ``<image>@<digest>``)."""
    if env in cfg.pin_digest and digest:
        return (f"{cfg.image}:{tag}@{digest}", f"{cfg.image}@{digest}")
    return (f"{cfg.image}:{tag}",)


# kubectl spends most of its ~55 ms start-up allocating (its API scheme) and collecting that
# garbage; the write waits for it before the push. A collection at 5x the live heap instead of 2x
# (Go's GOGC, default 100) makes it ~8 ms faster for ~3 MB more (kubectl kustomize of an overlay:
# 47 -> 50 MB peak). A GOGC the user set is theirs. https://go.dev/doc/gc-guide#GOGC
_RENDER_ENV = {"GOGC": "400"}


def _render_check(cfg: Config, repo: Repo, wt: Path, change: Change) -> None:
    """``kubectl kustomize`` the edited overlays: they must build and render ``<image>:<tag>``."""
    if proc.which("kubectl") is None:
        return
    for env in change.envs:
        expected = rendered_image(cfg, env, change.tag, change.digests.get(env))
        directory = wt / repo.overlay_dir(cfg, env)
        result = proc.run(("kubectl", "kustomize", str(directory)), read_only=True, check=False, quiet=True,
                          env=_RENDER_ENV if "GOGC" not in os.environ else None)  # fmt: skip
        if not result.ok:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"]
            raise UsageError(
                f"{repo.overlay_dir(cfg, env)} no longer builds with kubectl kustomize after the edit "
                f"({tail[0]}); nothing was committed"
            )
        if not any(image in result.stdout for image in expected):
            raise UsageError(
                f"{repo.overlay_dir(cfg, env)} builds but does not render {expected[0]} (check images[].name "
                f"and newName against [tool.dex] image/kustomize-image); nothing was committed"
            )


@contextlib.contextmanager
def _rendering(cfg: Config, repo: Repo, wt: Path, change: Change, *, planned: bool) -> Iterator[None]:
    """:func:`_render_check` in a thread while the block runs (``git commit``: both only read the
    worktree's files); its refusal is raised when the block ends, before anything is delivered.

    The guarantee stays: a failed check raises here, inside the worktree's ``with``, so the commit
    (detached, on no branch) is never pushed or put on a branch, and the worktree is removed.
    """
    if planned:
        yield
        return
    failure: list[BaseException] = []

    def check() -> None:
        try:
            _render_check(cfg, repo, wt, change)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)

    # A copy of the context: proc's settings (dry-run, echo streams) are context variables.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(check,), daemon=True)
    thread.start()
    try:
        yield
    except Exception:
        thread.join()  # the commit failed: let kubectl finish before the worktree goes
        raise
    thread.join()  # bounded: kubectl runs under proc's timeout
    if failure:
        raise failure[0]


def _current_branch(root: Path) -> str | None:
    result = git.git(
        "symbolic-ref", "--quiet", "--short", "HEAD", cwd=root, read_only=True, check=False, quiet=True
    )
    return result.stdout.strip() if result.ok else None


def _ours(root: Path, sha: str) -> bool:
    """A branch tip we may overwrite: a commit made by dex-tasks (it carries a Dex-Action trailer)."""
    git.fetch_commit(root, sha)
    return "dex-action" in git.parse_trailers(git.message_body(root, sha))


def _lease(root: Path, change: Change) -> str | None:
    """The remote PR branch's tip that we may replace (None: the branch does not exist)."""
    tip = git.remote_branch_sha(root, change.branch)
    if tip is not None and not _ours(root, tip):
        raise UsageError(
            f"branch {change.branch!r} already exists on origin and was not made by dex-tasks; "
            "delete it or merge its PR first"
        )
    return tip


def _check_local_branch(root: Path, change: Change) -> None:
    if _current_branch(root) == change.branch:
        raise UsageError(f"branch {change.branch!r} is checked out here; switch branches to use --no-push")
    if git.local_branch_exists(root, change.branch):
        tip = git.rev_parse(root, f"refs/heads/{change.branch}")
        if tip is not None and not _ours(root, tip):
            raise UsageError(f"local branch {change.branch!r} exists and was not made by dex-tasks")


# -- applying --------------------------------------------------------------------------------


def apply(
    report: Reporter,
    change: Change,
    *,
    config: Config,
    task: str,
    base_sha: str | None = None,
    repo: Repo | None = None,
) -> Outcome:
    """Make ``change`` (see module docstring). Raises DexError; leaves nothing half-done.

    ``report`` gets the human output; ``task`` names the job summary line in GitHub Actions.
    ``base_sha``: ``origin/<base>`` as the caller has just fetched it (to read the current tag),
    so the run fetches each branch once; None fetches it here. A push race re-fetches either way.
    ``repo``: the caller's :func:`~dex_tasks.gitops.state.open_repo` of ``config`` (None: opened here).
    """
    outcome = _apply(report, config, change, base_sha, repo or open_repo(config))
    _report(task, change, outcome)
    return outcome


def _report(task: str, change: Change, outcome: Outcome) -> None:
    """Step outputs and a job summary line in GitHub Actions (no-ops elsewhere)."""

    if not gha.active():
        return
    data = outcome.as_json()
    keys = (
        "changed",
        "env",
        "tag",
        "previous_tag",
        "base",
        "branch",
        "commit",
        "pushed",
        "pr_url",
        "compare_url",
        "registry_check",
    )
    outputs = {key: _output(data.get(key)) for key in keys}
    # As `previous_tag`: the one env's digest, or the one all envs share (promote stage/prod sets
    # one tag, so one digest); empty when the registry was not asked. `digests` is the --json
    # mapping (env -> digest or null), for `fromJSON(steps.<id>.outputs.digests).prod`.
    outputs["digest"] = _output(_common(data["digests"]))
    outputs["digests"] = json.dumps(data["digests"], separators=(",", ":"))
    gha.set_outputs(outputs)
    where = outcome.pr_url or outcome.compare_url or outcome.branch or change.base
    verb = "dry-run: would set" if proc.is_dry_run() else ("set" if outcome.changed else "already at")
    gha.summary(f"**{task}** {data['env']}: {verb} `{change.tag}` ({where})\n")


def _output(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Tree:
    """The files a change is made in: the temporary worktree, or under ``--dry-run`` (where
    proc only echoes ``git worktree add``) the base commit that worktree would have checked out.

    The one place the two runs differ; every git command is the same call in both.
    """

    root: Path
    wt: Path
    base_sha: str
    planned: bool

    def read(self, path: str, *, planned_rev: str | None = None) -> str | None:
        """``path``'s text; ``planned_rev``: in a dry run, the commit whose content the real
        worktree would hold at this step (after a ``git revert``: the reverted commit's parent)."""
        rev = planned_rev or self.base_sha
        # The tree first, in both runs, so a dry run refuses a symbolic link with the same words.
        paths.check_tree(self.root, rev, path, where=f"commit {rev[:12]}")
        if self.planned:
            # `git show` decodes with "replace" too: _edits refuses the result the same way.
            return git.show(self.root, rev, path)
        paths.check_disk(self.wt, path)
        return _read(self.wt / path)

    def write(self, path: str, text: str) -> None:
        if not self.planned:
            paths.check_disk(self.wt, path)  # never through a link: the edit stays in the worktree
            (self.wt / path).write_bytes(text.encode("utf-8"))  # bytes: keep CRLF as it was


def _apply(report: Reporter, cfg: Config, change: Change, base_sha: str | None, repo: Repo) -> Outcome:
    git.check_ref_name(change.branch)
    if cfg.signs(change.envs):
        # Read-only and before the worktree: a setup git cannot sign with is refused (exit 2)
        # with nothing made, in a dry run as in the real one.
        signing.require(repo.root, change.envs)
    # fetch also refuses a bad base name and a clone without origin (exit 2), as the caller's did.
    base_sha = base_sha or git.fetch(repo.root, change.base)
    planned = proc.is_dry_run()
    # Read-only, so a dry run refuses (and leases) exactly where the real run would.
    lease: str | None = None
    if not change.push:
        _check_local_branch(repo.root, change)
    elif not change.direct:
        lease = _lease(repo.root, change)
    attempts = _attempts()
    last = ""
    for attempt in range(1, attempts + 1):
        with git.worktree(repo.root, base_sha) as wt:
            tree = _Tree(root=repo.root, wt=wt, base_sha=base_sha, planned=planned)
            outcome = _commit_in(report, cfg, repo, tree, change)
            outcome.attempts = attempt
            if not outcome.changed:
                return outcome
            pushed = _deliver(
                report, repo, wt, change, outcome, lease=lease, planned=planned, attempt=attempt
            )
            if pushed is None:
                return outcome
            # Retry what can heal: the base branch moved (re-apply the edit on its new tip), or the
            # network hiccuped. A stale lease on a PR branch or a rejection by the server
            # (protected branch, hook, permissions) does not heal by retrying.
            target = change.base if change.direct else change.branch
            if not ((pushed.stale and change.direct) or pushed.transient):
                raise RemoteError(f"push to {target} was rejected: {pushed.detail}; nothing was changed")
            last = (
                f"rejected after {attempt} attempts: {change.base} keeps moving"
                if pushed.stale
                else (f"failed after {attempt} attempts ({pushed.detail})")
            )
            if attempt == attempts:
                break
            delay = _backoff(attempt)
            why = f"{change.base} moved on origin while we committed" if pushed.stale else pushed.detail
            report.warn(f"{why} (attempt {attempt}/{attempts}); trying again on the new tip in {delay:.1f}s")
        time.sleep(delay)
        base_sha = git.fetch(repo.root, change.base)
    raise RemoteError(
        f"push to {change.base if change.direct else change.branch} still {last}; "
        "nothing was changed, run the task again"
    )


def _deliver(
    report: Reporter,
    repo: Repo,
    wt: Path,
    change: Change,
    outcome: Outcome,
    *,
    lease: str | None,
    planned: bool,
    attempt: int,
) -> git.PushResult | None:
    """Put the commit made in ``wt`` where ``change`` says; None when done, else the failed push."""
    if not change.push:
        git.set_local_branch(repo.root, change.branch, outcome.commit or PLANNED_COMMIT)
        outcome.branch = change.branch
        if not planned:
            push_to = f"{change.base}" if change.direct else change.branch
            report.out(
                f"committed {short(outcome.commit)} on local branch {change.branch} (not pushed; "
                f"push it with: git push origin {change.branch}:refs/heads/{push_to})"
            )
        return None
    _before_push(change, attempt)
    target = change.base if change.direct else change.branch
    if change.direct:
        pushed = git.push(wt, "HEAD", target)
    else:
        if not planned and attempt == 1:  # a dry run asks GitHub nothing
            _check_github(repo)
        pushed = git.push(wt, "HEAD", target, lease=lease, new_branch=lease is None)
    if not pushed.ok:
        return pushed
    outcome.branch = target
    if planned:
        if not change.direct:
            report.out(f"would open or update a PR {change.branch} -> {change.base}: {change.pr_title}")
        return None
    outcome.pushed = True
    report.out(f"pushed {short(outcome.commit)} to {'' if change.direct else 'branch '}{target}")
    if not change.direct:
        _pull_request_or_say(report, repo, change, outcome)
    return None


def short(sha: str | None) -> str:
    return (sha or "")[:12]


def _commit_in(report: Reporter, cfg: Config, repo: Repo, tree: _Tree, change: Change) -> Outcome:
    if change.revert_commit is not None:
        return _revert_in(report, cfg, repo, tree, change)
    edits = _edits(cfg, repo, change, tree.read)
    previous = {env: edit.previous_tag for env, edit in edits}
    outcome = Outcome(
        changed=False,
        envs=change.envs,
        tag=change.tag,
        previous_tags=previous,
        base=change.base,
        from_env=change.from_env,
        forced=change.forced,
        digests=dict(change.digests),
        registry_check=change.registry_check,
    )
    changed = [(env, edit) for env, edit in edits if edit.changed]
    if not changed:
        report.out(f"{'/'.join(change.envs)} already at {change.tag} on {change.base}: nothing to do")
        return outcome
    for env, edit in edits:
        report.out(f"{env}: {edit.previous_tag or '(none)'} -> {change.tag}")
    outcome.diff = "".join(edit.diff() for _, edit in changed)
    if tree.planned:
        report.out(outcome.diff.rstrip("\n"))
    for _, edit in changed:
        tree.write(edit.path, edit.new_text)
    text = message(change, previous)
    # The rendered files exist only in the real worktree; the check runs while git commits.
    with _rendering(cfg, repo, tree.wt, change, planned=tree.planned):
        # git.head() is "" when proc only echoed the commit: the JSON says null, as for no commit.
        paths = [edit.path for _, edit in changed]
        outcome.commit = git.commit(tree.wt, text, paths, root=repo.root, sign=cfg.signs(change.envs)) or None
    _say_message(report, tree, text)
    outcome.changed = True
    return outcome


def _say_message(report: Reporter, tree: _Tree, text: str) -> None:
    """In a dry run, the message the echoed ``git commit --file=-`` would have read from stdin."""
    if tree.planned:
        report.out("commit message:\n  " + text.rstrip("\n").replace("\n", "\n  "))


def _read(path: Path) -> str | None:
    try:
        # "replace", as for `git show` in dry-run: _edits refuses the result the same way in both.
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def _revert_in(report: Reporter, cfg: Config, repo: Repo, tree: _Tree, change: Change) -> Outcome:

    env = change.envs[0]
    path = repo.overlay_path(cfg, env)
    before = tree.read(path)
    previous_tag = (
        overlay.read_tag(before, cfg.kustomize_image_name, path=path) if before is not None else None
    )
    sha = change.revert_commit or ""
    # A commit that also changed other files (CD's stage/prod commit on main): `git revert` would
    # undo the other envs too, so only this env's file is put back as it was before the commit.
    partial = any(other != path for other in git.changed_paths(repo.root, sha))
    diff = ""
    if tree.planned:
        diff = git.diff_commit(repo.root, sha, reverse=True, path=path if partial else None)
        report.out(diff.rstrip("\n"))
    if partial:
        after: str | None = _revert_file(tree, change, sha, path, before)
    else:
        git.revert(tree.wt, sha, root=repo.root)
        # The reverted commit is the overlay's last one, so a clean revert leaves its parent's file.
        after = tree.read(path, planned_rev=f"{sha}^")
    tag = overlay.read_tag(after, cfg.kustomize_image_name, path=path) if after is not None else None
    change = dataclasses.replace(change, tag=tag or change.tag)
    if not tree.planned:
        _render_check(cfg, repo, tree.wt, change)
    reverted = git.message_body(repo.root, sha).splitlines()
    if partial:
        subject = f'Revert "{reverted[0] if reverted else sha}" for {env}'
        body = f"This reverts {path} of commit {sha}; the other files it changed stay as they are."
    elif tree.planned:
        subject = f'Revert "{reverted[0] if reverted else sha}"'  # what `git revert --no-edit` writes
        body = f"This reverts commit {sha}."
    else:
        subject = git.message_body(repo.root, git.head(tree.wt)).splitlines()[0]
        body = f"This reverts commit {sha}."
    full = dataclasses.replace(change, body=(body, *change.body))
    text = message(full, {env: previous_tag}, subject=subject)
    sign = cfg.signs(change.envs)
    if partial:
        commit = git.commit(tree.wt, text, [path], root=repo.root, sign=sign) or None
    else:
        # Signed here, not at the revert: this amended commit is the one that leaves the worktree.
        commit = git.amend_message(tree.wt, text, root=repo.root, sign=sign) or None
    how = f"{path} as before {short(sha)}" if partial else f"git revert {short(sha)}"
    report.out(f"{env}: {previous_tag or '(none)'} -> {change.tag} ({how})")
    _say_message(report, tree, text)
    return Outcome(
        changed=True,
        envs=change.envs,
        tag=change.tag,
        previous_tags={env: previous_tag},
        base=change.base,
        commit=commit,
        forced=change.forced,
        diff=diff,
        digests=dict(change.digests),
        registry_check=change.registry_check,
    )


def _revert_file(tree: _Tree, change: Change, sha: str, path: str, current: str | None) -> str:
    """Put ``path`` back as it was before ``sha``, if it still holds exactly what ``sha`` wrote."""
    wrote = git.show(tree.root, sha, path)
    if current is None or current != wrote:
        # Recomputed on every attempt, on the tip being pushed onto: a later change is never undone.
        raise UsageError(
            f"{path} on {change.base} was changed after {short(sha)} (it no longer holds what that "
            f"commit wrote): --revert would undo that too; use rollback {change.envs[0]} TAG instead; "
            "nothing was changed"
        )
    restored = git.show(tree.root, f"{sha}^", path)
    if restored is None:
        raise UsageError(f"{path} did not exist before {short(sha)}: nothing to revert to")
    tree.write(path, restored)
    return restored


def _pull_request_or_say(report: Reporter, repo: Repo, change: Change, outcome: Outcome) -> None:
    try:
        _pull_request(report, repo, change, outcome)
    except DexError as exc:
        # The branch is pushed (that part is done and idempotent); say how to finish. A token or
        # repository problem stays exit 2: it is configuration, and a rerun alone will not fix it.
        error = GitHubAccessError if isinstance(exc, UsageError) else RemoteError
        raise error(
            f"{exc}; branch {change.branch} is pushed: run the task again to open the PR"
            + (f", or open it at {outcome.compare_url}" if outcome.compare_url else "")
        ) from None


def _check_github(repo: Repo) -> None:
    """``--pr`` with a token: one cheap request checks the token and the repository *before*
    anything is pushed, so a bad token or repository name is exit 2 and leaves no stray branch."""
    from dex_tasks.tools import github  # noqa: PLC0415 - requests only when a PR is made

    try:
        client = github.GitHub.from_env(remote_url=git.remote_url(repo.root) or "")
    except ForeignHostError:
        return  # the PR step says so after the push and prints the compare URL, as before
    if client is not None:
        with client:
            client.check_push_access()


def _pull_request(report: Reporter, repo: Repo, change: Change, outcome: Outcome) -> None:
    """Open or update the PR; with no token, print the compare URL instead."""
    from dex_tasks.tools import github  # noqa: PLC0415 - requests only when a PR is made

    url = git.remote_url(repo.root) or ""
    try:
        slug: str | None = github.repo_from_env(url)
    except DexError:
        slug = None  # not a GitHub remote (a local mirror, another forge): no URL to offer
    if slug:
        outcome.compare_url = github.compare_url(slug, change.base, change.branch, remote_url=url)
    try:
        client = github.GitHub.from_env(remote_url=url)
    except ForeignHostError as exc:
        report.out(f"{exc}; open the PR at {outcome.compare_url}")
        return
    if client is None:
        where = (
            f"open the PR at {outcome.compare_url}"
            if outcome.compare_url
            else f"open a PR from {change.branch} to {change.base}"
        )
        report.out(f"no GitHub token (GITHUB_TOKEN or GH_TOKEN): {where}")
        return
    with client:
        pr = client.open_or_update_pr(
            head=change.branch,
            base=change.base,
            title=change.pr_title,
            body=change.pr_body() if callable(change.pr_body) else change.pr_body,
            labels=change.labels,
        )
    outcome.pr_url = pr.url
    outcome.pr_number = pr.number
    report.out(f"{'opened' if pr.created else 'updated'} PR #{pr.number}: {pr.url}")
