"""Notifications: one message per change (bump, promote, rollback) or verify outcome.

Targets come from the environment only (they are secrets, redacted like tokens):

* ``DEX_SLACK_WEBHOOK_URL``: a Slack incoming webhook; ``blocks`` plus a ``text`` fallback (what
  notifications and screen readers show), kept within Slack's limits: ``text`` at most 40,000
  characters, at most 50 blocks, a section's text at most 3,000
  (https://api.slack.com/reference/block-kit/blocks, https://api.slack.com/messaging/webhooks).
* ``DEX_WEBHOOK_URL``: a generic JSON webhook. With ``DEX_WEBHOOK_SECRET`` the body is signed:
  ``X-Dex-Signature: sha256=<hex of HMAC-SHA256(secret, body)>``, the body being the exact bytes
  sent (compact JSON, sorted keys, UTF-8), so a receiver verifies before parsing.

``[tool.dex.notify] envs`` limits which envs notify (empty: all). Bounded: a 10 s timeout per
request, at most 3 attempts (a connection error, 429 or 5xx is retried after 1 s, then 2 s, or
``Retry-After`` up to 30 s), a progress line per retry. Never raises: a target that still fails is
a warning and the task's exit code stays its own. Nothing is sent under ``--dry-run``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from dex_tasks import durations, proc, redact
from dex_tasks._untrusted import unusable_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dex_tasks.report import Reporter

SLACK_ENV = "DEX_SLACK_WEBHOOK_URL"
WEBHOOK_ENV = "DEX_WEBHOOK_URL"
SECRET_ENV = "DEX_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
SIGNATURE_HEADER = "X-Dex-Signature"
SLACK_TEXT_MAX = 40_000
SLACK_BLOCKS_MAX = 50
SLACK_SECTION_MAX = 3_000
TIMEOUT = 10.0
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before attempt 2; doubles after
MAX_RETRY_AFTER = 30.0
ICONS = {True: "✅", False: "❌"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """What happened: ``kind`` bump | promote | rollback | verify | test."""

    kind: str
    envs: tuple[str, ...]
    tag: str | None
    ok: bool = True
    previous_tags: dict[str, str | None] = dataclasses.field(default_factory=dict)
    from_env: str | None = None
    commit: str | None = None
    pr_url: str | None = None
    detail: str = ""
    repository: str | None = None
    run_url: str | None = None

    def headline(self) -> str:
        envs = ", ".join(self.envs)
        if self.kind == "verify":
            return f"{ICONS[self.ok]} verify {envs}: {'passed' if self.ok else 'failed'}"
        if self.kind == "test":
            return "dex-tasks test notification"
        was = ", ".join(f"{env} was {tag or '(none)'}" for env, tag in self.previous_tags.items())
        source = f" from {self.from_env}" if self.from_env else ""
        return f"{ICONS[self.ok]} {self.kind} {envs}{source} -> {self.tag}" + (f" ({was})" if was else "")

    def lines(self) -> list[str]:
        out = [self.detail] if self.detail else []
        if self.repository:
            out.append(f"repository: {self.repository}")
        if self.commit:
            out.append(f"commit: {self.commit[:12]}")
        if self.pr_url:
            out.append(f"pull request: {self.pr_url}")
        if self.run_url:
            out.append(f"run: {self.run_url}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "source": "dex-tasks", "version": 1, "event": self.kind, "ok": self.ok, "envs": list(self.envs),
            "tag": self.tag, "previous_tags": dict(self.previous_tags), "from_env": self.from_env,
            "commit": self.commit, "pr_url": self.pr_url, "detail": self.detail,
            "repository": self.repository, "run_url": self.run_url, "text": self.headline(),
            "sent_at": durations.now().isoformat(),
        }  # fmt: skip


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(event: Event) -> dict[str, Any]:
    """``{"text", "blocks"}`` within Slack's limits (see the module docstring)."""
    text = _cut("\n".join([event.headline(), *event.lines()]), SLACK_TEXT_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(event.headline(), SLACK_SECTION_MAX)}}
    ]
    blocks += [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(line, SLACK_SECTION_MAX)}}
        for line in event.lines()
    ]
    if len(blocks) > SLACK_BLOCKS_MAX:
        blocks = blocks[: SLACK_BLOCKS_MAX - 1]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "(more in the run log)"}]})
    return {"text": text, "blocks": blocks}


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, sorted keys, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def progress(text: str) -> None:
    """A progress line on stderr ("notify slack: attempt 2/3 ..."), redacted."""
    sys.stderr.write(redact.redact(text) + "\n")
    sys.stderr.flush()


def _post(
    name: str, url: str, body: bytes, headers: dict[str, str], sleep: Callable[[float], None]
) -> str | None:
    """POST with bounded retries; None when delivered, else why not."""
    import requests  # noqa: PLC0415 - only when there is something to send

    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        wait = BACKOFF * 2 ** (attempt - 1)
        try:
            response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            problem = f"cannot reach it ({type(exc).__name__})"
        else:
            if response.status_code < 300:
                return None
            problem = f"HTTP {response.status_code} {_cut(response.text.strip(), 200)}".strip()
            if response.status_code != 429 and response.status_code < 500:
                return problem  # a 4xx will not change on a retry (a bad URL, a revoked hook)
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                wait = min(float(retry_after), MAX_RETRY_AFTER)
        if attempt < ATTEMPTS:
            progress(
                f"notify {name}: attempt {attempt}/{ATTEMPTS} failed ({problem}); retrying in {wait:g} s"
            )
            sleep(wait)
    return f"{problem} after {ATTEMPTS} attempts"


_URL_ENVS = {"slack": SLACK_ENV, "webhook": WEBHOOK_ENV}


def target_problem(name: str) -> str | None:
    """Why target ``name`` (slack | webhook) cannot be sent to, from its variables alone (never
    their values: they are secrets); None when it can."""
    variable = _URL_ENVS[name]
    url = os.environ.get(variable, "").strip()
    if not url.lower().startswith(("https://", "http://")):
        return f"{variable} is not an http(s) URL"
    if unusable_secret(url):
        return f"{variable} holds a control character or bytes that are not UTF-8"
    if name == "webhook" and unusable_secret(os.environ.get(SECRET_ENV, "")):
        return f"{SECRET_ENV} holds a control character or bytes that are not UTF-8"
    return None


def targets() -> list[str]:
    return [
        name
        for name, env in (("slack", SLACK_ENV), ("webhook", WEBHOOK_ENV))
        if os.environ.get(env, "").strip()
    ]


def send(
    report: Reporter,
    event: Event,
    *,
    envs_filter: Sequence[str] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Send ``event`` to every configured target: ``{target: None (sent) | why not}``. Never raises."""
    for name in (SLACK_ENV, WEBHOOK_ENV, SECRET_ENV):
        redact.register_secret(os.environ.get(name))
    if envs_filter and event.kind != "test" and not set(event.envs) & set(envs_filter):
        return {}
    if proc.is_dry_run():
        for name in targets():
            report.out(f"would notify {name}: {event.headline()}")
        return {}
    result: dict[str, str | None] = {}
    for name in targets():
        url = os.environ.get(_URL_ENVS[name], "").strip()
        problem = target_problem(name)
        if problem is not None:
            result[name] = problem
        else:
            payload = slack_payload(event) if name == "slack" else event.as_json()
            body = encode(payload)
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "dex-tasks"}
            secret = os.environ.get(SECRET_ENV, "")
            if name == "webhook" and secret:
                headers[SIGNATURE_HEADER] = sign(body, secret)
            try:
                result[name] = _post(name, url, body, headers, sleep)
            except Exception as exc:  # noqa: BLE001 - a notification must never fail the task
                result[name] = f"{type(exc).__name__}: {exc}"
        if result[name] is None:
            report.out(f"notified {name}: {event.headline()}")
        else:
            report.warn(f"notification to {name} not sent: {result[name]}")
    return result
