"""GitHub Actions integration: groups, annotations, step outputs, job summary, masking.

Every function is a no-op unless ``GITHUB_ACTIONS=true``, so tasks call them unconditionally.
Escaping follows the workflow-command rules (actions/toolkit ``command.ts``): in messages
``%``, ``\\r`` and ``\\n``; in properties additionally ``:`` and ``,``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dex_tasks import redact

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

Level = Literal["error", "warning", "notice"]


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, message: str, properties: Mapping[str, object] | None = None) -> str:
    props = ""
    if properties:
        parts = [
            f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None
        ]
        if parts:
            props = " " + ",".join(parts)
    return f"::{name}{props}::{escape_data(message)}"


def _emit(line: str) -> None:
    # Workflow commands are read from the step's stdout *and* stderr; stderr keeps --json stdout clean.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def annotation(
    level: Level,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    end_line: int | None = None,
    col: int | None = None,
    title: str | None = None,
) -> None:
    if not active():
        return
    props = {"file": file, "line": line, "endLine": end_line, "col": col, "title": title}
    _emit(_command(level, redact.redact(message), props))


def add_mask(value: str) -> None:
    if active() and value:
        _emit(_command("add-mask", value))


# The runner masks only the secrets it was given; tokens dex-tasks mints or reads (an app token, a
# registry password from a file) are masked in the log from the moment they are registered.
redact.on_new_secret(add_mask)


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible log group in Actions; elsewhere nothing is printed."""
    if not active():
        yield
        return
    _emit(f"::group::{escape_data(title)}")
    try:
        yield
    finally:
        _emit("::endgroup::")


def _append(env_var: str, text: str) -> bool:
    path = os.environ.get(env_var)
    if not active() or not path:
        return False
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
    return True


def set_output(name: str, value: str) -> None:
    """Write a step output. Multi-line values use the heredoc form with a random delimiter.

    Redacted: the runner only masks the secrets it knows, and outputs travel to other jobs.
    """
    value = redact.redact(value)
    if "\n" in value or "\r" in value:
        # Random, so a value cannot end the heredoc early (os.urandom: uuid would cost an import of
        # platform on every start, for the same 128 bits).
        delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
        _append("GITHUB_OUTPUT", f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    else:
        _append("GITHUB_OUTPUT", f"{name}={value}\n")


def set_outputs(outputs: Mapping[str, str]) -> None:
    for name, value in outputs.items():
        set_output(name, value)


def summary(markdown: str) -> None:
    """Append markdown to the job summary ($GITHUB_STEP_SUMMARY), redacted."""
    _append("GITHUB_STEP_SUMMARY", redact.redact(markdown).rstrip("\n") + "\n\n")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
