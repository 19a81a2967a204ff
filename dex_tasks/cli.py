"""The one argument parser: a subcommand per task, errors mapped to exit codes once, here.

``--dry-run``, ``--json`` and ``-C DIR`` are accepted anywhere on the line (before a literal
``--``), so ``dex-tasks promote stage prod --dry-run`` and ``dex-tasks --json status`` both work,
and so do the poe and nox adapters, which only append arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from dex_tasks import __version__, gha, proc, redact
from dex_tasks import config as config_mod
from dex_tasks._untrusted import inert
from dex_tasks.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, DexError, UsageError
from dex_tasks.registry import BY_NAME, TASKS, TaskSpec
from dex_tasks.tasks import Context

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

PROG = "dex-tasks"
DEBUG_ENV = "DEX_DEBUG"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GlobalFlags:
    """The flags accepted anywhere on the line (:func:`split_global_flags`)."""

    dry_run: bool = False
    json: bool = False
    directory: Path | None = None


def split_global_flags(argv: Sequence[str]) -> tuple[GlobalFlags, list[str]]:
    """Pull ``--dry-run``, ``--json`` and ``-C DIR`` out of ``argv``, wherever they are.

    Everything after a literal ``--`` is left alone (it belongs to the tool, e.g. pytest).
    """
    dry_run = as_json = False
    directory: str | None = None
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--":
            rest.extend(items[i:])
            break
        if arg == "--dry-run":
            dry_run = True
        elif arg == "--json":
            as_json = True
        elif arg in {"-C", "--directory"}:
            if i + 1 >= len(items):
                raise UsageError(f"{arg} needs a directory")
            i += 1
            directory = items[i]
        elif arg.startswith("--directory="):
            directory = arg.partition("=")[2]
        elif arg.startswith("-C") and len(arg) > 2:
            directory = arg[2:]
        else:
            rest.append(arg)
        i += 1
    path = Path(directory) if directory is not None else None
    return GlobalFlags(dry_run=dry_run, json=as_json, directory=path), rest


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so a bad argument is one line (and one
    JSON object under --json) through the same path as every other error; --help still exits 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: the global flags are taken out by exact name before parsing, so
        # argparse would accept `--dry` as `--dry-run` on the task's parser and the task would
        # then run for real. Abbreviations would also swallow pass-through arguments (pytest's).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _add_global_help(parser: argparse.ArgumentParser) -> None:
    # Parsed by split_global_flags; declared here only so --help documents them.
    group = parser.add_argument_group("global options (accepted anywhere on the line)")
    group.add_argument(
        "--dry-run", action="store_true", help="print the plan and every changing command; change nothing"
    )
    group.add_argument("--json", action="store_true", help="print one JSON result object on stdout")
    group.add_argument("-C", metavar="DIR", dest="directory", help="run as if started in DIR")


EXIT_CODES_HELP = (
    "exit codes: 0 done or nothing to do, 1 a check failed, 2 bad input or configuration,\n"
    "3 a required tool is missing, 4 a remote failed after retries, 70 internal error (a bug),\n"
    "130 interrupted"
)


def _examples() -> str:
    """One line per task, from the registry: what ``dex-tasks --help`` promises."""
    return "\n".join(f"  {spec.example}" for spec in TASKS)


def build_parser(
    with_arguments: Iterable[str] | None = None, *, only: str | None = None
) -> argparse.ArgumentParser:
    """The parser: a subcommand per task, each with its help, so ``--help`` and "invalid choice"
    list them all.

    Only the tasks named in ``with_arguments`` (None: every task) get their own arguments, which
    means importing their modules: a run imports the one task it runs, not all of them. ``only``:
    the one subcommand a run of that task needs, for a line that shows no list of tasks.
    """
    wanted = None if with_arguments is None else set(with_arguments)
    parser = _Parser(
        prog=PROG,
        description="The DEX CI/CD runbook as tasks. The same from poe, nox and GitHub Actions.",
        epilog=f"examples:\n{_examples()}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_help(parser)
    sub = parser.add_subparsers(dest="task", metavar="TASK", title="tasks")
    sub.required = True
    for spec in TASKS if only is None else (BY_NAME[only],):
        task_parser = sub.add_parser(
            spec.name,
            help=spec.help,
            description=spec.help,
            epilog=f"example:\n  {spec.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_global_help(task_parser)
        if wanted is None or spec.name in wanted:
            _task_attr(spec, spec.add_arguments)(task_parser)
    return parser


def _task_attr(spec: TaskSpec, attr: str) -> Callable[..., Any]:
    module = importlib.import_module(spec.module)
    func: Callable[..., Any] = getattr(module, attr)
    return func


def _parse(argv: Sequence[str]) -> tuple[GlobalFlags, argparse.Namespace, TaskSpec]:
    flags, rest = split_global_flags(argv)
    named = _first_task(rest)
    # The other tasks' subcommands only where the line can show them: anything before the task's
    # name (the top-level help; a word such as `-` or `-1`, which argparse takes for TASK and whose
    # "invalid choice" lists them), or no task named. Building all of them is most of a short run's
    # parse (each subparser asks gettext for its group titles).
    listed = named is None or rest[0] != named
    parser = build_parser(with_arguments=() if named is None else (named,), only=None if listed else named)
    args, extra = parser.parse_known_args(rest)
    spec = BY_NAME[args.task]
    if extra and extra[0] == "--":
        extra = extra[1:]
    if extra and not spec.passthrough:
        # Pointing at the task's own --help (the top-level parser would say `dex-tasks --help`).
        raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see: {PROG} {spec.name} --help)")
    args.passthrough = extra
    return flags, args, spec


def _emit_json(payload: dict[str, Any]) -> None:
    # Redacted value by value: a URL with a password or a token in a task's data must not reach
    # stdout, and replacing inside the dumped text could break the JSON.
    sys.stdout.write(json.dumps(redact.redact_data(payload), indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one task and return its exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Best guesses for the error line until the parser has spoken.
    task_name = _guess_task(argv)
    as_json = "--json" in argv
    dry_run = "--dry-run" in argv
    try:
        flags, args, spec = _parse(argv)
        task_name, as_json, dry_run = spec.name, flags.json, flags.dry_run
        return _run(flags, args, spec)
    except DexError as err:
        return _report_error(err, task_name=task_name, as_json=as_json, dry_run=dry_run)
    except BrokenPipeError:
        raise  # the reader of our output left (`| head`): entry() ends quietly, not with an error
    except OSError as err:
        # A file-system problem no task anticipated (permissions, a file where a directory should
        # be, a full disk): still one line and one JSON object, never a traceback.
        where = f"{err.filename}: " if err.filename else ""
        usage = UsageError(f"{where}{err.strerror or err}")
        return _report_error(usage, task_name=task_name, as_json=as_json, dry_run=dry_run)
    except KeyboardInterrupt:
        sys.stderr.write(f"{_prefix(task_name)}: interrupted\n")
        if as_json:  # still one JSON object: a caller parsing stdout gets the exit code and why
            payload = {"task": task_name, "dry_run": dry_run, "exit_code": EXIT_INTERRUPTED}
            _emit_json({**payload, "error": "interrupted"})
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the last resort: a bug is one line and exit 70, never a traceback
        return _report_bug(err, task_name=task_name, as_json=as_json, dry_run=dry_run)


def _first_task(rest: Sequence[str]) -> str | None:
    """The task named in ``rest`` (the line without global flags), None when none is."""
    for arg in rest:
        if arg == "--":
            break
        if not arg.startswith("-"):
            return arg if arg in BY_NAME else None
    return None


def _guess_task(argv: Sequence[str]) -> str | None:
    """The task named on the line, for error lines before the parser has spoken (None: none)."""
    try:
        # The global flags out first, so the directory of -C/--directory is not taken for a task.
        rest = split_global_flags(argv)[1]
    except UsageError:  # a -C without its directory is the last argument: nothing to skip
        rest = list(argv)
    return _first_task(rest)


def _prefix(task_name: str | None) -> str:
    return f"{PROG} {task_name}" if task_name else PROG


def _report_error(err: DexError, *, task_name: str | None, as_json: bool, dry_run: bool) -> int:
    message = redact.redact(str(err))
    sys.stderr.write(f"{_prefix(task_name)}: error: {inert(message)}\n")
    gha.annotation("error", message.splitlines()[0] if message else "failed", title=_prefix(task_name))
    if as_json:
        payload = {"task": task_name, "dry_run": dry_run, **(err.data or {})}
        _emit_json({**payload, "exit_code": err.exit_code, "error": message})
    return err.exit_code


def _report_bug(err: Exception, *, task_name: str | None, as_json: bool, dry_run: bool) -> int:
    """An exception nobody raised on purpose: one line (the traceback only with DEX_DEBUG=1), exit 70."""
    if os.environ.get(DEBUG_ENV, "").strip() not in {"", "0"}:
        import traceback  # noqa: PLC0415 - only on this path, and only for a bug

        sys.stderr.write(redact.redact("".join(traceback.format_exception(err))))
    detail = " ".join(str(err).split()) or "(no message)"  # one line, whatever the message held
    message = redact.redact(f"internal error: {type(err).__name__}: {detail}")
    sys.stderr.write(f"{_prefix(task_name)}: {message} (a bug; {DEBUG_ENV}=1 shows the traceback)\n")
    gha.annotation("error", message, title=_prefix(task_name))
    if as_json:
        _emit_json({"task": task_name, "dry_run": dry_run, "exit_code": EXIT_INTERNAL, "error": message})
    return EXIT_INTERNAL


def _run(flags: GlobalFlags, args: argparse.Namespace, spec: TaskSpec) -> int:
    cwd = Path.cwd()
    if flags.directory is not None:
        if not flags.directory.is_dir():
            raise UsageError(f"-C {flags.directory}: not a directory")
        cwd = flags.directory.resolve()
        os.chdir(cwd)
    cfg = config_mod.load(cwd)
    ctx = Context(
        task=spec.name,
        config=cfg,
        cwd=cwd,
        json=flags.json,
        task_names=tuple(BY_NAME),
        build_parser=build_parser,
    )
    # Streamed tool output is human output: it goes where ctx.out() writes.
    with proc.session(dry_run=flags.dry_run, stream_to=ctx.human):
        for name in redact.SECRET_ENV_VARS:
            redact.register_secret(os.environ.get(name))
        result = _task_attr(spec, spec.run)(ctx, args)
    line = redact.redact(result.message or f"{spec.name} failed") if result.exit_code != 0 else ""
    if flags.json:
        payload = {"task": spec.name, "dry_run": flags.dry_run, **result.data, "exit_code": result.exit_code}
        if result.exit_code != 0:
            # The contract: every non-zero exit's object says why, whatever the task put in data.
            payload.setdefault("error", line)
        _emit_json(payload)
    if result.exit_code != 0:
        sys.stderr.write(f"{PROG} {spec.name}: {inert(line)}\n")
    return int(result.exit_code)


def _tolerant_streams() -> None:
    """Unencodable output becomes ``?`` instead of a UnicodeEncodeError traceback.

    On Windows stdout/stderr use the ANSI code page (cp1252) when they are a pipe or file, as in
    CI or ``| tee``; tool output, commit subjects and file names often hold characters it lacks.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def entry() -> None:
    _tolerant_streams()
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `dex-tasks history prod | head`: the reader left; that is not our failure.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
