"""``preview {list | health PR | down PR | comment PR}``: PR preview environments.

* ``list``: previews found as Argo CD apps matching ``[tool.dex.cluster] preview-app`` (when Argo
  CD is configured) and as namespaces matching ``preview-namespace`` (when kubectl has access).
* ``health PR``: ``kubectl port-forward svc/<service>`` in the preview namespace and GET
  ``health-path`` with bounded retries (or ``--url``). Exit 1 when it does not answer 2xx.
* ``down PR``: delete the preview's Argo CD app (``argocd app delete --yes``, which cascades to
  its resources; without the CLI but with ``ARGOCD_AUTH_TOKEN``, Argo CD's REST API) or, without
  Argo CD, the namespace (``kubectl delete namespace``). A preview that is already gone is exit 0;
  one that nothing here can delete (no Argo CD, no cluster access) is exit 3/2/4 as the cause says,
  and the PR comment is left as it was. ``--dry-run`` prints the delete only.
* ``comment PR``: create or update one sticky PR comment (namespace, image tag ``pr-N``, the
  port-forward command) through the GitHub API; without a token the comment is printed and the
  task exits 0 with a note - so the PR-preview workflow stays one-line ``run:`` steps.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from dex_tasks import cluster, proc
from dex_tasks.errors import EXIT_CHECK_FAILED, AppNotFoundError, DexError, ToolMissing, UsageError
from dex_tasks.gitops.tags import pr_tag
from dex_tasks.tasks import Context, TaskResult, _args, table
from dex_tasks.tools import argocd, argocd_api, git, github

if TYPE_CHECKING:
    import argparse

COMMENT_MARKER = "<!-- dex-tasks:preview -->"
API_HINT = f"or set {argocd.TOKEN_ENV} too: without the CLI, preview down uses Argo CD's REST API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="previews that exist (Argo CD apps and namespaces)")
    health = sub.add_parser("health", help="port-forward the preview's service and GET the health path")
    health.add_argument("pr", metavar="PR", help="pull request number")
    health.add_argument("--url", type=_args.value, help="GET this URL instead of a port-forward")
    health.add_argument(
        "--attempts", type=_args.count, default=10, metavar="N", help="GET attempts (default 10)"
    )
    health.add_argument(
        "--interval", type=_args.pause, default=3.0, metavar="S", help="seconds between attempts"
    )
    down = sub.add_parser("down", help="delete the preview's Argo CD app, or its namespace")
    down.add_argument("pr", metavar="PR", help="pull request number")
    comment = sub.add_parser("comment", help="post or update the sticky preview comment on the PR")
    comment.add_argument("pr", metavar="PR", help="pull request number")
    # On each subcommand only: argparse lets a subparser's default overwrite the parent's value.
    for p in (listing, health, down):
        p.add_argument(
            "--context",
            type=_args.value,
            help="kubectl context (default: [tool.dex.cluster] context or current)",
        )


def _pr(value: str) -> int:

    pr_tag(value)  # exit 2 unless a positive integer
    return int(value)


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    ctx = ctx.with_config(cluster.with_context(ctx.config, getattr(args, "context", None)))
    if args.action == "list":
        return _list(ctx)
    pr = _pr(args.pr)
    if args.action == "health":
        return _health(ctx, pr, args)
    if args.action == "down":
        return _down(ctx, pr)
    return _comment(ctx, pr)


def _pattern(template: str) -> re.Pattern[str]:
    """``dex-pr-{pr}`` -> ``^dex\\-pr\\-(\\d+)$``."""
    before, _, after = template.partition("{pr}")
    return re.compile(f"^{re.escape(before)}([1-9][0-9]*){re.escape(after)}$")


def _list(ctx: Context) -> TaskResult:

    cfg = ctx.config
    previews: dict[int, dict[str, Any]] = {}
    notes: list[str] = []

    def entry(pr: int) -> dict[str, Any]:
        return previews.setdefault(
            pr, {"pr": pr, "namespace": None, "app": None, "sync": None, "health": None, "terminating": False}
        )

    reason = argocd.not_configured_reason()
    if reason is None:
        app_re = _pattern(cfg.cluster.preview_app)
        try:
            for app in argocd.app_list():
                if m := app_re.match(app.name):
                    item = entry(int(m.group(1)))
                    item.update(app=app.name, sync=app.sync_status, health=app.health)
                    item["namespace"] = item["namespace"] or app.namespace or None
        except DexError as exc:
            notes.append(f"Argo CD apps unknown: {exc}")
    else:
        notes.append(f"Argo CD not checked: {reason}")
    problem = cluster.access_problem(cfg)
    if problem is None:
        ns_re = _pattern(cfg.cluster.preview_namespace)
        try:
            listed = cluster.kubectl_for(cfg).get_json("namespaces") or {}
            for item in listed.get("items", []) or []:
                meta = item.get("metadata") or {}
                if m := ns_re.match(str(meta.get("name", ""))):
                    # A deleted namespace stays (phase Terminating) until its content is gone.
                    entry(int(m.group(1))).update(
                        namespace=meta["name"], terminating=bool(meta.get("deletionTimestamp"))
                    )
        except DexError as exc:
            notes.append(f"namespaces unknown: {exc}")
    else:
        notes.append(f"namespaces not checked: {problem}")
    rows = [previews[k] for k in sorted(previews)]
    ctx.out(
        table(
            ["PR", "NAMESPACE", "APP", "SYNC", "HEALTH"],
            [
                [
                    str(r["pr"]),
                    f"{r['namespace']} (Terminating)" if r["terminating"] else r["namespace"] or "-",
                    r["app"] or "-",
                    r["sync"] or "-",
                    r["health"] or "-",
                ]
                for r in rows
            ],
        )
        if rows
        else "no previews found"
    )
    for note in notes:
        ctx.out(note)
    return TaskResult(data={"previews": rows, "notes": notes})


def _health(ctx: Context, pr: int, args: argparse.Namespace) -> TaskResult:

    if args.attempts < 1 or args.interval < 0:
        raise UsageError("--attempts must be positive and --interval not negative")
    namespace = ctx.config.cluster.preview_namespace.format(pr=pr)
    if args.url:
        if not args.url.startswith(("http://", "https://")):
            raise UsageError(f"--url must be an http(s) URL, got {args.url!r}")
        health = cluster.http_health(args.url, attempts=args.attempts, interval=args.interval)
    else:
        health = cluster.port_forward_health(
            ctx.config, namespace, attempts=args.attempts, interval=args.interval
        )
    data = {"pr": pr, "namespace": namespace, **health.as_json()}
    if health.ok:
        ctx.out(f"preview {pr} is healthy: {health.detail} from {health.url}")
        return TaskResult(data=data)
    message = f"preview {pr} is not healthy: {health.url}: {health.detail} after {health.attempts} attempt(s)"
    return TaskResult(exit_code=EXIT_CHECK_FAILED, message=message, data=data)


def _down(ctx: Context, pr: int) -> TaskResult:
    result = _delete(ctx, pr)
    # Tell the PR: the sticky comment now says the preview is gone (when a token is there).
    _post(ctx, pr, gone_body(pr, result.data), result.data, quiet_without_token=True)
    return result


def _delete(ctx: Context, pr: int) -> TaskResult:

    cfg = ctx.config
    namespace = cfg.cluster.preview_namespace.format(pr=pr)
    app = cfg.cluster.preview_app.format(pr=pr)
    data: dict[str, Any] = {"pr": pr, "namespace": namespace, "app": None, "deleted": None, "changed": False}
    verb = "would delete" if proc.is_dry_run() else "deleted"
    # ARGOCD_SERVER says "this project uses Argo CD": without the CLI (GitHub's hosted runners) the
    # app is deleted through Argo CD's REST API when there is a token; else a missing CLI is exit 3,
    # never a silent fallback to deleting the namespace under Argo CD's feet (self-heal would
    # recreate it).
    if argocd.SERVER_ENV in os.environ and proc.which("argocd") is None and argocd_api.available():
        return _delete_through_api(ctx, pr, app, data)
    if argocd.in_use(hint=API_HINT):
        data["app"] = app
        try:
            argocd.app_get(app)
        except AppNotFoundError:
            # Argo CD 2.5+ cannot tell "no such app" from "this token may not read it".
            gone = f"Argo CD app {app} does not exist (or this token may not see it)"
            ctx.out(f"preview {pr}: {gone}; nothing to do")
            return TaskResult(data=data)
        argocd.app_delete(app)
        data.update(deleted=f"app/{app}", changed=not proc.is_dry_run())
        ctx.out(f"{verb} Argo CD app {app} (and its resources)")
        return TaskResult(data=data)
    problem = cluster.access_problem(cfg)
    if problem is not None:
        # Nothing here can delete it: fail as the cause says (3 kubectl missing, 2 no kubeconfig;
        # an unreachable cluster is 4 below), so a teardown that did nothing never looks done.
        why = (
            f"preview {pr}: nothing was deleted: Argo CD is not configured "
            f"({argocd.not_configured_reason()}) and there is no cluster access ({problem})"
        )
        fix = (
            f"set {argocd.SERVER_ENV} and {argocd.TOKEN_ENV} to delete the Argo CD app, "
            "or give the job a kubeconfig"
        )
        if proc.which("kubectl") is None:
            raise ToolMissing("kubectl", hint=f"{why}; {fix}")
        raise UsageError(f"{why}; {fix}")
    kube = cluster.kubectl_for(cfg)
    found = kube.get_json("namespace", namespace)
    outcome = "gone" if found is None else "deleted"
    if found is not None and (found.get("metadata") or {}).get("deletionTimestamp"):
        outcome = "terminating"
    if outcome == "deleted":
        outcome = kube.delete_namespace(namespace)  # it may have gone or started terminating since
    if outcome == "gone":
        ctx.out(f"preview {pr}: namespace {namespace} does not exist; nothing to do")
        return TaskResult(data=data)
    if outcome == "terminating":
        ctx.out(f"preview {pr}: namespace {namespace} is already being deleted (Terminating); nothing to do")
        return TaskResult(data=data)
    data.update(deleted=f"namespace/{namespace}", changed=not proc.is_dry_run())
    ctx.out(f"{verb} namespace {namespace}")
    return TaskResult(data=data)


def _delete_through_api(ctx: Context, pr: int, app: str, data: dict[str, Any]) -> TaskResult:
    """``preview down`` without the argocd CLI: Argo CD's REST API (see tools/argocd_api.py)."""
    data.update(app=app, argocd_via="api")
    with argocd_api.ArgoCDAPI.from_env() as api:
        try:
            api.get_app(app)
        except AppNotFoundError:
            gone = f"Argo CD app {app} does not exist (or this token may not see it)"
            ctx.out(f"preview {pr}: {gone}; nothing to do")
            return TaskResult(data=data)
        where = f"{api.url}{api.app_path(app)}?cascade=true"
        if proc.is_dry_run():
            proc.echo(f"# dry-run: would DELETE {where} (Argo CD API)")
            data.update(deleted=f"app/{app}")
            ctx.out(f"would delete Argo CD app {app} (and its resources)")
            return TaskResult(data=data)
        if not api.delete_app(app):  # gone between the two requests
            ctx.out(f"preview {pr}: Argo CD app {app} does not exist; nothing to do")
            return TaskResult(data=data)
    data.update(deleted=f"app/{app}", changed=True)
    ctx.out(f"deleted Argo CD app {app} (and its resources) through the Argo CD API")
    return TaskResult(data=data)


def gone_body(pr: int, data: dict[str, Any]) -> str:
    deleted = data.get("deleted")
    what = f"`{deleted}` was deleted" if deleted else "nothing was left to delete"
    return "\n".join([
        COMMENT_MARKER,
        f"### Preview of #{pr}",
        "",
        f"The preview in `{data['namespace']}` is gone: {what}.",
    ])  # fmt: skip


def comment_body(ctx: Context, pr: int) -> str:

    cfg = ctx.config
    namespace = cfg.cluster.preview_namespace.format(pr=pr)
    tag = pr_tag(pr)
    port = cfg.cluster.service_port
    # The runbook's `svc/dex 8000:8000`: the same port locally, unless that needs root (< 1024).
    local = port if port >= 1024 else 8080
    forward = proc.quote(
        cluster.kubectl_for(cfg).argv(
            "port-forward", "-n", namespace, f"svc/{cfg.cluster.service}", f"{local}:{port}"
        )
    )
    return "\n".join(
        [
            COMMENT_MARKER,
            f"### Preview of #{pr}",
            "",
            "| | |",
            "| --- | --- |",
            f"| namespace | `{namespace}` |",
            f"| image | `{cfg.image}:{tag}` |",
            f"| Argo CD app | `{cfg.cluster.preview_app.format(pr=pr)}` |",
            "",
            "Open it locally:",
            "",
            "```sh",
            forward,
            f"curl http://127.0.0.1:{local}{cfg.cluster.health_path}",
            "```",
            "",
            f"Check it: `dex-tasks preview health {pr}` - tear it down: `dex-tasks preview down {pr}`",
        ]
    )


def _comment(ctx: Context, pr: int) -> TaskResult:
    body = comment_body(ctx, pr)
    data: dict[str, Any] = {"pr": pr, "body": body}
    _post(ctx, pr, body, data, quiet_without_token=False)
    return TaskResult(data=data)


def _post(ctx: Context, pr: int, body: str, data: dict[str, Any], *, quiet_without_token: bool) -> None:
    """Create or update the sticky comment; without a token print it (or stay quiet) and say so."""

    data.update(posted=False, comment_url=None)
    try:
        remote = git.remote_url(git.toplevel(ctx.config.root))
    except DexError:
        remote = None
    client = github.GitHub.from_env(remote_url=remote)
    if client is None:
        if not quiet_without_token:
            ctx.out(body)
            ctx.out(f"note: no GITHUB_TOKEN/GH_TOKEN: the comment for PR #{pr} was printed, not posted")
        data["comment_note"] = "no token: comment not posted"
        return
    with client:
        if proc.is_dry_run():
            ctx.out(body)
            ctx.out(f"dry-run: would post or update the preview comment on PR #{pr} in {client.repo}")
            return
        url = client.upsert_comment(number=pr, body=body, marker=COMMENT_MARKER)
    data.update(posted=True, comment_url=url)
    ctx.out(f"preview comment on PR #{pr}: {url}")
