"""``metrics [--since 30d] [--env ENV]...``: pipeline metrics from GitHub, DORA per env from git,
Argo CD sync history per env.

Pipeline (needs a token): pass rate and p50/p90 duration of the CI and CD workflows against the
runbook's targets (:mod:`dex_tasks.insight.pipeline`). DORA (git alone): deployment frequency,
lead time for changes, change failure rate, time to restore (:mod:`dex_tasks.insight.dora`);
with a token, deployments whose ``verify`` posted a failure status count as failed too. Argo CD
(when configured): syncs seen and p50/p90 sync seconds against ``sync-seconds``, the last sync's
phase (:mod:`dex_tasks.insight.argosync`).
``DEX_NOW`` stands in for the clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dex_tasks import durations, gha
from dex_tasks.errors import DexError
from dex_tasks.gitops import state
from dex_tasks.insight import argosync, deployments, dora, gitsource, pipeline
from dex_tasks.tasks import Context, TaskResult, table

if TYPE_CHECKING:
    import argparse
    import datetime as dt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="30d", metavar="DURATION", help="the window: 30s, 15m, 2h, 7d (default 30d)"
    )
    parser.add_argument(
        "--env", dest="envs", action="append", default=None, metavar="ENV",
        help="DORA for this env (repeatable; default: every env)",
    )  # fmt: skip


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else "✓" if ok else "✗"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:

    cfg = ctx.config
    window = durations.parse_duration(args.since)
    envs = list(dict.fromkeys(cfg.check_env(e) for e in args.envs)) if args.envs else list(cfg.environments)
    until = durations.now()
    since = until - window
    repo = state.open_repo(cfg)
    gitsource.fetch_bases(cfg, repo, envs)
    by_env = {env: gitsource.env_deploys(cfg, repo, env) for env in envs}
    graph = gitsource.commit_graph(cfg, repo, envs)

    client = deployments.client_for(repo.root)
    failed: dict[str, set[str]] = {}
    pipe: dict[str, Any] | None = None
    if client is None:
        ctx.out("no GitHub token (GITHUB_TOKEN or GH_TOKEN): pipeline metrics skipped; DORA from git alone")
    else:
        with client:
            pipe = pipeline.metrics(ctx, client, cfg.metrics, since, until)
            for env in envs:
                try:
                    failed[env] = deployments.failed_commits(client, env, since)
                except DexError as exc:
                    ctx.warn(f"GitHub deployment statuses of {env} not read: {exc}")
    keys = dora.all_envs(by_env, graph, since=since, until=until, failed_commits=failed)
    argo = argosync.collect(ctx, cfg, envs, since, until)
    _show(ctx, pipe=pipe, keys=keys, argo=argo, since=since, until=until)
    return TaskResult(
        data={
            "since": since.isoformat(),
            "until": until.isoformat(),
            "pipeline": pipe,
            "dora": {env: m.as_json() for env, m in keys.items()},
            "argocd": argo,
        }
    )


def _show(
    ctx: Context,
    *,
    pipe: dict[str, Any] | None,
    keys: dict[str, dora.EnvMetrics],
    argo: dict[str, dict[str, Any] | None] | None,
    since: dt.datetime,
    until: dt.datetime,
) -> None:
    fmt = durations.format_duration
    lines = [f"window: {since.isoformat()} .. {until.isoformat()}"]
    pipe_rows = []
    for name, p in (pipe or {}).items():
        pipe_rows.append([
            name, p["workflow"], str(p["runs"]),
            f"{_pct(p['pass_rate'])} {_mark(p['met_pass_rate'])} (target {_pct(p['target_pass_rate'])})",
            fmt(p["p50_s"]), f"{fmt(p['p90_s'])} {_mark(p['met_duration'])} (target {fmt(p['target_s'])})",
        ])  # fmt: skip
    pipe_headers = ["PIPELINE", "WORKFLOW", "RUNS", "PASS RATE", "P50", "P90"]
    dora_headers = [
        "ENV",
        "DEPLOYS",
        "PER DAY",
        "LEAD TIME P50",
        "CHANGE FAILURE RATE",
        "TIME TO RESTORE P50",
    ]
    dora_rows = [
        [env, str(m.deployments), f"{m.per_day:.2f}", fmt(m.lead_time_p50_s),
         f"{_pct(m.change_failure_rate)} ({m.failures})", fmt(m.time_to_restore_p50_s)]
        for env, m in keys.items()
    ]  # fmt: skip
    argo_headers = ["ARGO CD", "APP", "SYNCS", "P50", "P90", "LAST SYNC"]
    argo_rows = [_argo_row(env, a) for env, a in (argo or {}).items() if a is not None]
    if pipe_rows:
        lines += ["", table(pipe_headers, pipe_rows)]
    lines += ["", table(dora_headers, dora_rows)]
    if argo_rows:
        lines += ["", table(argo_headers, argo_rows)]
    ctx.out("\n".join(lines))
    summary = [f"### dex-tasks metrics ({since.date()} .. {until.date()})", ""]
    if pipe_rows:
        summary += [gha.markdown_table(pipe_headers, pipe_rows), ""]
    summary.append(gha.markdown_table(dora_headers, dora_rows))
    if argo_rows:
        summary += ["", gha.markdown_table(argo_headers, argo_rows)]
    gha.summary("\n".join(summary))


def _argo_row(env: str, a: dict[str, Any]) -> list[str]:
    fmt = durations.format_duration
    if a.get("error"):
        return [env, a["app"], "?", "-", "-", "not read (see the warning)"]
    syncs = str(a["syncs"])
    if not a["complete"]:  # Argo CD dropped older entries: say the count is a floor
        syncs += f" (Argo CD keeps the last {a['history_limit']})"
    if a["without_duration"]:
        syncs += f", {a['without_duration']} without start time"
    last = a["last_phase"] or "-"
    if a["last_at"]:
        last += f" {a['last_at']}"
    return [
        env, a["app"], syncs, fmt(a["p50_s"]),
        f"{fmt(a['p90_s'])} {_mark(a['met'])} (target {fmt(a['target_s'])})", last,
    ]  # fmt: skip
