"""Progress lines for waits: ``# waiting for X (attempt n/N, next try in Ss): why``.

A leaf module (standard library and :mod:`redact` only), so every layer can say that it is waiting
without importing the layers above it. One line per attempt goes to stderr, redacted; a retry with
no wait gets its line too, so a long run never looks hung. The lines start with ``#`` (like the
comments ``proc`` echoes), never with the error prefix ``dex-tasks <task>:``, so a failure still
ends in exactly one error line.
"""

from __future__ import annotations

import sys

from dex_tasks import redact
from dex_tasks._untrusted import inert

PREFIX = "# waiting for"
SAY_AFTER = 2.0  # seconds: a wait longer than this gets its line first


def line(what: str, attempt: int, attempts: int, next_in: float | None = None, why: str = "") -> str:
    """The text :func:`waiting` writes (without the newline)."""
    where = f"attempt {attempt}/{attempts}"
    if next_in is not None:
        where += f", next try in {max(0.0, next_in):.1f}s"
    text = f"{PREFIX} {what} ({where})"
    if why:
        text += f": {' '.join(why.split())}"  # one line, whatever the reason holds
    return text


def waiting(what: str, attempt: int, attempts: int, next_in: float | None = None, why: str = "") -> None:
    """Say on stderr that attempt ``attempt`` of ``attempts`` at ``what`` is about to happen (in
    ``next_in`` seconds, when it waits), and ``why`` the previous one did not do."""
    note(line(what, attempt, attempts, next_in, why))


def note(text: str) -> None:
    """Write one already-formatted progress line to stderr, redacted."""
    # sys.stderr looked up per call: pytest's capsys and a redirected stream get the line.
    # Inert: a retry notice quotes what the other side said (a registry's error code, an API message).
    sys.stderr.write(inert(redact.redact(" ".join(text.split()))) + "\n")
    sys.stderr.flush()
