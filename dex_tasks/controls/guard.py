"""What every writing task asks before it writes: lock, freeze window, soak. One call, one verdict.

* **lock** (``refs/dex/locks/<env>`` on origin, :mod:`dex_tasks.gitops.locks`): bump, promote and
  rollback into an env locked by someone else are refused unless ``--break-lock`` (recorded as
  ``Dex-Lock-Broken: <env>``). The lock's holder (the same git identity) passes, and so does
  ``rollback --emergency``, with a warning and the same trailer. An expired lock does not block.
* **freeze** (``[tool.dex.freeze]``): bump and promote into a frozen env are refused unless
  ``--break-freeze`` (``Dex-Freeze-Broken: <env>``). Rollbacks are always allowed.
* **soak** (``[tool.dex] soak``): ``promote FROM TO`` needs FROM to have run the tag for
  ``soak[FROM]`` (see :mod:`dex_tasks.controls.soak`); ``--force`` promotes anyway (``Dex-Forced``).

Every refusal raises :class:`~dex_tasks.errors.ControlRefused` (exit 1, one line) before anything
is written; under ``--dry-run`` too, since the checks only read (``git ls-remote``, ``git log``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dex_tasks import durations
from dex_tasks.controls import freeze, soak
from dex_tasks.errors import ControlRefused, DexError
from dex_tasks.gitops import history, locks
from dex_tasks.tools import git

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from dex_tasks.config import Config
    from dex_tasks.gitops.state import Repo
    from dex_tasks.report import Reporter

FREEZING_ACTIONS = frozenset({"bump", "promote"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Overrides:
    """The flags a writing task was given (``--break-lock``, ``--break-freeze``, ``--force``)."""

    break_lock: bool = False
    break_freeze: bool = False
    force: bool = False
    emergency: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    trailers: tuple[str, ...] = ()
    forced: tuple[str, ...] = ()  # reasons --force had to override (promote's Dex-Forced)


def check(
    report: Reporter,
    cfg: Config,
    repo: Repo,
    envs: Sequence[str],
    *,
    action: str,
    overrides: Overrides,
    from_env: str | None = None,
    tag: str | None = None,
) -> Verdict:
    """Refuse (:class:`ControlRefused`) or return the trailers that record what was overridden."""
    now = durations.now()
    trailers: list[str] = []
    trailers += _locks(report, repo, envs, action=action, overrides=overrides, now=now)
    if action in FREEZING_ACTIONS:
        trailers += _freeze(report, cfg, envs, overrides=overrides, now=now)
    forced: list[str] = []
    if action == "promote" and from_env is not None and tag is not None:
        problem = soak_problem(cfg, repo, from_env, tag, now=now)
        if problem is not None:
            if not overrides.force:
                raise ControlRefused(f"promotion refused: {problem}; nothing was written (--force overrides)")
            report.warn(f"{problem}; promoting anyway (--force)")
            forced.append(problem)
    return Verdict(trailers=tuple(trailers), forced=tuple(forced))


def _locks(
    report: Reporter, repo: Repo, envs: Sequence[str], *, action: str, overrides: Overrides, now: dt.datetime
) -> list[str]:
    held = locks.read_all(repo.root)
    mine: str | None = None
    trailers = []
    for env in envs:
        lock = held.get(env)
        if lock is None or lock.expired(now):
            continue
        mine = mine or locks.identity(repo.root)
        if lock.by == mine:
            report.out(f"{env} is locked by you ({lock.reason}): going ahead")
            continue
        if overrides.break_lock or (overrides.emergency and action == "rollback"):
            why = "--break-lock" if overrides.break_lock else "emergency rollback"
            report.warn(f"{env} is locked by {lock.describe()}; going ahead ({why}, recorded in the commit)")
            trailers.append(f"Dex-Lock-Broken: {env}")
            continue
        raise ControlRefused(
            f"{env} is locked by {lock.describe()}; nothing was written "
            f"(ask them to unlock, or use --break-lock)"
        )
    return trailers


def _freeze(report: Reporter, cfg: Config, envs: Sequence[str], *, overrides: Overrides,
            now: dt.datetime) -> list[str]:  # fmt: skip
    trailers = []
    for env in envs:
        found = freeze.frozen(cfg.freeze.get(env, ()), now)
        if found is None:
            continue
        what = f"{env} is frozen ({found.window}) until {durations.iso(found.until)}"
        if not overrides.break_freeze:
            raise ControlRefused(f"{what}; nothing was written (use --break-freeze)")
        report.warn(f"{what}; going ahead (--break-freeze, recorded in the commit)")
        trailers.append(f"Dex-Freeze-Broken: {env}")
    return trailers


def soak_state(cfg: Config, repo: Repo, env: str, tag: str, *, now: dt.datetime) -> soak.Soak | None:
    """How long ``env`` has run ``tag`` against ``soak[env]`` (None: no soak for ``env``).

    Reads ``origin/<base>`` as the caller fetched it."""
    required = cfg.soak.get(env)
    if not required:
        return None
    path = repo.overlay_path(cfg, env)
    rev = git.tracking(cfg.branch_for(env))
    entries = history.deployments(repo.root, rev, path, cfg.kustomize_image_name)
    return soak.check(durations.parse_duration(required), entries, tag, now)


def soak_problem(cfg: Config, repo: Repo, env: str, tag: str, *, now: dt.datetime) -> str | None:
    state = soak_state(cfg, repo, env, tag, now=now)
    if state is None or state.ok:
        return None
    need = durations.describe(state.required)
    if state.since is None:
        return f"{env} must run {tag} for {need} first (soak), and its overlay history never deployed it"
    return (
        f"{env} has run {tag} since {durations.iso(state.since)}, {durations.describe(state.ran)} "
        f"of the {need} soak: {durations.describe(state.remaining)} left"
    )


def status(cfg: Config, repo: Repo | None, env: str, tag: str | None, *, held: dict[str, locks.Lock],
           now: dt.datetime) -> dict[str, Any]:  # fmt: skip
    """``lock``, ``freeze`` and ``soak`` of one ``status`` row (each None when not configured/held)."""
    lock = held.get(env)
    lock_json = None
    if lock is not None:
        lock_json = {**lock.as_json(), "expired": lock.expired(now)}
    windows = cfg.freeze.get(env, ())
    freeze_json = None
    if windows:
        found = freeze.frozen(windows, now)
        freeze_json = {
            "frozen": found is not None,
            "window": found.window if found else None,
            "until": durations.iso(found.until) if found else None,
        }
    soak_json = None
    if cfg.soak.get(env):
        try:
            state = soak_state(cfg, repo, env, tag, now=now) if tag and repo else None
        except DexError:
            state = None  # no history to measure from (status says why git is unknown)
        soak_json = {
            "required": cfg.soak[env],
            "tag": tag,
            "since": durations.iso(state.since) if state and state.since else None,
            "remaining_s": int(state.remaining.total_seconds()) if state else None,
            "ok": bool(state and state.ok),
        }
    return {"lock": lock_json, "freeze": freeze_json, "soak": soak_json}
