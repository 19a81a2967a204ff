"""The one call the delivery path makes after an outcome: GitHub deployments, then notifications.

``delivered`` runs after bump-overlay, promote and rollback have pushed their change (from
``tasks/_delivery.apply``); ``verified`` after verify's verdict. Both are no-ops under
``--dry-run``, and for a change that was not pushed (nothing changed, or ``--no-push``: nobody
else can see it). Neither ever raises: whatever goes wrong is a warning, and the task's exit
code stays its own.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dex_tasks import proc
from dex_tasks.insight import deployments, notify

if TYPE_CHECKING:
    from dex_tasks.config import Config
    from dex_tasks.gitops.workflow import Change, Outcome
    from dex_tasks.report import Reporter
    from dex_tasks.tools.github import GitHub

_notices: set[str] = set()


def _notice_once(report: Reporter, text: str) -> None:
    if text not in _notices:
        _notices.add(text)
        report.out(text)


def _client(report: Reporter, cfg: Config) -> GitHub | None:
    # Any directory of the clone names its origin: no `git rev-parse --show-toplevel` for it.
    client = deployments.client_for(cfg.root)
    if client is None:
        _notice_once(report, "GitHub deployments skipped: no GitHub token (GITHUB_TOKEN or GH_TOKEN)")
    return client


def delivered(report: Reporter, cfg: Config, change: Change, outcome: Outcome) -> None:
    """Record the GitHub deployments of a pushed change and send its one notification."""
    if proc.is_dry_run() or not outcome.changed or not outcome.pushed or not outcome.commit:
        return
    try:
        client = _client(report, cfg)
        if client is not None:
            with client:
                deployments.record(
                    report, client, cfg, envs=outcome.envs, ref=outcome.commit, tag=outcome.tag,
                    digests=dict(getattr(outcome, "digests", None) or {}), action=change.action,
                    live=change.direct,
                )  # fmt: skip
        event = notify.Event(
            kind=change.action, envs=outcome.envs, tag=outcome.tag, previous_tags=dict(outcome.previous_tags),
            from_env=outcome.from_env, commit=outcome.commit, pr_url=outcome.pr_url,
            detail="" if change.direct else f"waiting for the pull request to be merged into {change.base}",
            repository=os.environ.get("GITHUB_REPOSITORY") or None, run_url=deployments.run_url(),
        )  # fmt: skip
        notify.send(report, event, envs_filter=cfg.notify.envs)
    except Exception as exc:  # noqa: BLE001 - insight must never fail a delivery that succeeded
        report.warn(f"deployment record or notification failed: {type(exc).__name__}: {exc}")


def verified(report: Reporter, cfg: Config, env: str, *, ok: bool, detail: str) -> None:
    """Post verify's status on the env's GitHub deployment and send its notification."""
    if proc.is_dry_run():
        return
    try:
        client = _client(report, cfg)
        if client is not None:
            with client:
                deployments.verified(report, client, env, ok=ok, detail=detail)
        event = notify.Event(
            kind="verify", envs=(env,), tag=None, ok=ok, detail=detail,
            repository=os.environ.get("GITHUB_REPOSITORY") or None, run_url=deployments.run_url(),
        )  # fmt: skip
        notify.send(report, event, envs_filter=cfg.notify.envs)
    except Exception as exc:  # noqa: BLE001 - a verdict must reach the exit code whatever happens here
        report.warn(f"deployment status or notification failed: {type(exc).__name__}: {exc}")
