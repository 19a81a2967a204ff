"""Tasks: one module per task. Each exports ``add_arguments(parser)`` and ``run(ctx, args)``.

``run`` returns a :class:`TaskResult`; it raises a :class:`~dex_tasks.errors.DexError` for
anything that stops it. Human output goes through :meth:`Context.out` (stdout, or stderr under
``--json`` so stdout holds exactly one JSON object).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any, TextIO

from dex_tasks import proc, redact
from dex_tasks._untrusted import inert
from dex_tasks.errors import EXIT_OK

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from pathlib import Path

    from dex_tasks.config import Config


@dataclasses.dataclass(frozen=True, kw_only=True)
class Context:
    """What every task gets: the config, where it runs, and the global flags.

    ``dry_run`` is not stored here: :func:`dex_tasks.proc.session` holds the one flag (proc is
    where it takes effect), and :attr:`dry_run` reads it, so the two can never disagree.
    """

    task: str
    config: Config
    cwd: Path
    json: bool = False
    #: Every task the entry point offers (``doctor --require`` checks names against it), passed
    #: in so that no task imports the entry layer's table.
    task_names: tuple[str, ...] = ()
    #: The entry layer's full parser (every task's arguments), passed in for the same reason:
    #: ``completion`` walks it without importing ``cli``.
    build_parser: Callable[[], argparse.ArgumentParser] | None = None

    @property
    def dry_run(self) -> bool:
        return proc.is_dry_run()

    def with_config(self, config: Config) -> Context:
        """The same context with another config (e.g. ``--context`` applied to the cluster's)."""
        return dataclasses.replace(self, config=config)

    @property
    def human(self) -> TextIO:
        return sys.stderr if self.json else sys.stdout

    def out(self, text: str = "") -> None:
        """Human-readable output: stdout normally, stderr under --json. Secrets are redacted."""
        stream = self.human
        stream.write(inert(redact.redact(text)) + "\n")
        stream.flush()

    def warn(self, text: str) -> None:
        sys.stderr.write(f"warning: {inert(redact.redact(text))}\n")
        sys.stderr.flush()


@dataclasses.dataclass(kw_only=True)
class TaskResult:
    """The outcome of a task. ``data`` is the --json payload (cli adds task, dry_run, exit_code).

    ``exit_code`` 1 with a ``message`` is a check that said no (findings, failed tests, gate);
    errors that stop a task are raised instead.
    """

    exit_code: int = EXIT_OK
    message: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table, columns padded to the widest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
