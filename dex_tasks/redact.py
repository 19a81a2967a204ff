"""The secret registry: what must never reach a log, an error, a step output or ``--json``.

A leaf module (standard library only), so everything that writes output can import it: proc for
echoes, errors and streamed lines; gha for annotations, outputs and the job summary; the CLI for
its last-resort message. Whoever else needs to hear about a new secret (gha masks it in the
Actions log) subscribes with :func:`on_new_secret` instead of being imported from here, which
would make a cycle.
"""

from __future__ import annotations

import _thread
import functools
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# Redacted wherever they show up, from the first line on (not only once the code that uses them
# has registered them): the tools that read them can echo them in an error.
GITHUB_TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
SECRET_ENV_VARS = (
    *GITHUB_TOKEN_VARS, "ARGOCD_AUTH_TOKEN", "DEX_REGISTRY_PASSWORD",
    # Notification targets (insight/notify.py): a webhook URL is as good as a token.
    "DEX_SLACK_WEBHOOK_URL", "DEX_WEBHOOK_URL", "DEX_WEBHOOK_SECRET",
)  # fmt: skip
MASK = "***"

_secrets: set[str] = set()
_listeners: list[Callable[[str], None]] = []
# threading.Lock is this very function; `import threading` (~0.7 ms, and its atexit machinery)
# would be paid on every start for a lock only a command's reader threads contend for.
_lock = _thread.allocate_lock()


def on_new_secret(listener: Callable[[str], None]) -> None:
    """Call ``listener`` with every value :func:`register_secret` sees for the first time from now on."""
    with _lock:
        _listeners.append(listener)


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every echo, error and streamed line from now on (and tell the listeners)."""
    if not value or not value.strip():
        return
    with _lock:
        new = value not in _secrets
        _secrets.add(value)
        listeners = list(_listeners)
    if new:
        # Outside the lock, which is not reentrant: a listener may well redact what it writes.
        for listener in listeners:
            listener(value)


def _env_secrets(env: Mapping[str, str] | None = None) -> set[str]:
    source = os.environ if env is None else env
    return {v for name in SECRET_ENV_VARS if (v := source.get(name, "").strip())}


# Credentials inside URLs, which nobody registered: a token in a git remote
# (https://x-access-token:TOKEN@github.com/o/r), basic auth in a health URL. GitHub also takes a
# token as the user name alone (https://TOKEN@github.com/o/r), so http(s) loses the whole userinfo.
@functools.cache
def _url_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The password-in-URL and user-in-http(s)-URL patterns, compiled on the first text with an
    ``@``: most runs have none, and compiling them was ~0.8 ms of every start."""
    return (
        re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]+):[^/\s@'\"]+@", re.IGNORECASE),
        re.compile(r"\b(https?://)[^/\s:@'\"]+@", re.IGNORECASE),
    )


def redact(text: str) -> str:
    """Replace every known secret in ``text`` with ``***``; longest first so overlaps stay masked.

    Passwords in URLs are masked too (``https://user:***@host``, ``https://***@host``).
    """
    return _redact(text, _known())


def _known() -> list[str]:
    """Every secret known now, longest first."""
    with _lock:
        secrets = _secrets | _env_secrets()
    return sorted(secrets, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    if "@" not in text:  # both URL patterns end in one: most strings skip them
        return text
    password, user = _url_patterns()
    text = password.sub(rf"\1:{MASK}@", text)
    return user.sub(rf"\1{MASK}@", text)


def redact_data(value: object) -> object:
    """:func:`redact` every string in a JSON-like value (dict keys too); the structure stays."""
    return _redact_data(value, _known())  # the secrets looked up once, not once per string


def _redact_data(value: object, secrets: list[str]) -> object:
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {_redact_data(k, secrets): _redact_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(v, secrets) for v in value]
    return value
