"""GitHub Deployments: bump, promote and rollback record what runs where; verify posts the verdict.

Per env of a change: ``POST /repos/{o}/{r}/deployments`` (environment = env, ref = the overlay
commit, payload = tag and digest, ``production_environment`` for the last env, ``auto_merge:
false``, ``required_contexts: []`` since the overlay commit's checks are not the deployment's
gate, ``transient_environment: false``), then a status with ``auto_inactive: true`` so older
deployments of the env turn inactive: ``success`` when the commit is on the env's base branch,
``in_progress`` while it waits in a PR. ``verify`` posts ``success`` or ``failure`` on the env's
newest deployment, with ``log_url`` the Actions run. GitHub's Environments page then shows what
runs where. Without a token this is skipped with one notice; an API error is a warning: it never
changes the task's exit code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dex_tasks.errors import DexError
from dex_tasks.tools import git

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from dex_tasks.config import Config
    from dex_tasks.report import Reporter
    from dex_tasks.tools.github import GitHub

FAILED_STATES = frozenset({"failure", "error"})
MAX_STATUS_READS = 100


def client_for(root: Path) -> GitHub | None:
    """A GitHub client for the origin, None without a token (or for a host GitHub is not)."""
    from dex_tasks.tools import github  # noqa: PLC0415 - requests only for tasks that talk to GitHub

    if github.token_from_env() is None:
        return None  # asked first: without a token origin's URL is not needed (a git process less)
    try:
        return github.GitHub.from_env(remote_url=git.remote_url(root))
    except DexError:
        return None


def run_url() -> str | None:
    """``${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}`` in Actions."""
    server, repo, run_id = (os.environ.get(n, "").strip() for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                                                                      "GITHUB_RUN_ID"))  # fmt: skip
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None


def _status(state: str, description: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"state": state, "description": description[:140], "auto_inactive": True}
    url = run_url()
    if url:
        fields["log_url"] = url
    return fields


def record(
    report: Reporter,
    client: GitHub,
    cfg: Config,
    *,
    envs: tuple[str, ...],
    ref: str,
    tag: str,
    digests: dict[str, str],
    action: str,
    live: bool,
) -> list[int]:
    """One deployment and one status per env; returns the deployment ids (errors: warnings)."""
    ids = []
    for env in envs:
        payload: dict[str, Any] = {"tag": tag, "action": action}
        if digests.get(env):
            payload["digest"] = digests[env]
        try:
            created = client.create_deployment(
                ref=ref,
                environment=env,
                task="deploy",
                payload=payload,
                description=f"dex-tasks {action}: {tag}"[:140],
                production_environment=env == cfg.environments[-1],
                transient_environment=False,
                auto_merge=False,
                required_contexts=[],
            )
            deployment_id = int(created["id"])
            state = "success" if live else "in_progress"
            what = f"{tag} on {cfg.branch_for(env)}" if live else f"{tag}: waiting for the PR to merge"
            client.create_deployment_status(deployment_id, **_status(state, what))
        except (DexError, KeyError, TypeError, ValueError) as exc:
            report.warn(f"GitHub deployment of {env} not recorded: {exc}")
            continue
        ids.append(deployment_id)
        report.out(f"GitHub deployment {deployment_id} of {env}: {tag} ({state})")
    return ids


def verified(report: Reporter, client: GitHub, env: str, *, ok: bool, detail: str) -> int | None:
    """``verify``'s status on the env's newest deployment (None: there is none, or it failed)."""
    try:
        found = client.deployments(environment=env, per_page=1) or []
        if not found:
            report.out(f"no GitHub deployment of {env} to post the verify result on")
            return None
        deployment_id = int(found[0]["id"])
        client.create_deployment_status(deployment_id, **_status("success" if ok else "failure", detail))
    except (DexError, KeyError, TypeError, ValueError) as exc:
        report.warn(f"GitHub deployment status of {env} not posted: {exc}")
        return None
    report.out(f"GitHub deployment {deployment_id} of {env}: {'success' if ok else 'failure'}")
    return deployment_id


def failed_commits(client: GitHub, env: str, since: dt.datetime) -> set[str]:
    """Overlay commits of ``env`` whose newest deployment status since ``since`` is a failure."""
    result: set[str] = set()
    listed = client.deployments(environment=env, per_page=100) or []
    for deployment in listed[:MAX_STATUS_READS]:
        if str(deployment.get("created_at") or "") < since.strftime("%Y-%m-%dT%H:%M:%SZ"):
            break  # newest first: the rest is older than the window
        statuses = client.deployment_statuses(int(deployment["id"]), per_page=1) or []
        if statuses and statuses[0].get("state") in FAILED_STATES:
            result.add(str(deployment.get("sha") or ""))
    return result
