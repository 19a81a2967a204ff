"""The one error tree. Each class carries the exit code that ``cli.py`` maps it to.

Exit codes (DESIGN.md): 0 done or nothing to do; 1 a check failed; 2 bad input or configuration
(nothing changed); 3 a required tool is missing; 4 a remote still failed after bounded retries;
130 interrupted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TOOL_MISSING = 3
EXIT_REMOTE = 4
EXIT_INTERRUPTED = 130


class DexError(Exception):
    """Base of every error dex-tasks raises on purpose; ``str()`` is the one line users see."""

    exit_code: int = EXIT_CHECK_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class CheckFailed(DexError):
    """A check ran and said no: lint findings, failing tests, the scan gate, a refused promotion."""

    exit_code = EXIT_CHECK_FAILED


class UsageError(DexError):
    """Bad input: arguments, tags, env names, files. Raised before anything is changed."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """``[tool.dex]`` is invalid: unknown key, wrong type, unreadable file."""


class NotAvailable(UsageError):
    """A task that this version does not provide yet."""


class ToolMissing(DexError):
    """A binary a task needs is not on PATH."""

    exit_code = EXIT_TOOL_MISSING

    def __init__(self, tool: str, *, hint: str | None = None) -> None:
        super().__init__(f"required tool {tool!r} was not found on PATH", hint=hint)
        self.tool = tool


class CommandFailed(DexError):
    """A command exited non-zero. Carries argv, exit code and the tail of its output.

    The message is built by ``proc`` after secrets are redacted, so it is safe to print.
    """

    exit_code = EXIT_CHECK_FAILED

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class CommandTimeout(CommandFailed):
    """A command ran longer than its timeout and was killed."""


class RemoteError(DexError):
    """A remote (git push, GitHub, registry, cluster) still failed after bounded retries."""

    exit_code = EXIT_REMOTE
