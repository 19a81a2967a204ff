"""Where domain code writes what it is doing, without knowing about tasks or the CLI.

The GitOps and cluster layers take a :class:`Reporter` (a task's ``Context`` is one) plus the
config and task name as plain arguments, so data flows one way: tasks import them, never the
reverse.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Human output: ``out`` for progress (stdout, or stderr under --json), ``warn`` for stderr."""

    def out(self, text: str = "") -> None: ...

    def warn(self, text: str) -> None: ...
