"""Hostile notification targets (hostile-input sweep, second pass): a target that cannot be sent to
is exit 2 for ``notify --test`` before anything is sent, and a warning (never a traceback) after a
delivery; the message names the variable, never its value (a secret)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dex_tasks.insight import notify

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

# The port-1 URL refuses connections: were anything sent, the run would end in exit 4 after retries.
GOOD_URL = "http://127.0.0.1:1/hook"
CASES = {
    "file URL": ({"DEX_WEBHOOK_URL": "file:///etc/passwd"}, "DEX_WEBHOOK_URL is not an http(s) URL"),
    "no scheme": (
        {"DEX_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/X"},
        "DEX_SLACK_WEBHOOK_URL is not",
    ),
    "javascript": ({"DEX_WEBHOOK_URL": "javascript:alert(1)"}, "DEX_WEBHOOK_URL is not an http(s) URL"),
    "undecodable URL": ({"DEX_WEBHOOK_URL": GOOD_URL + "/\udcff"}, "DEX_WEBHOOK_URL holds"),
    "control in URL": ({"DEX_SLACK_WEBHOOK_URL": GOOD_URL + "\x1b[2J"}, "DEX_SLACK_WEBHOOK_URL holds"),
    # os.environ keeps bytes that are not UTF-8 as lone surrogates: the HMAC key could not be
    # encoded, a UnicodeEncodeError (exit 70) before.
    "undecodable secret": (
        {"DEX_WEBHOOK_URL": GOOD_URL, "DEX_WEBHOOK_SECRET": "s3cr3t\udcff"},
        "DEX_WEBHOOK_SECRET holds a control character or bytes that are not UTF-8",
    ),
    "one bad of two": (
        {"DEX_WEBHOOK_URL": GOOD_URL, "DEX_SLACK_WEBHOOK_URL": "ftp://x/"},
        "DEX_SLACK_WEBHOOK_URL is not an http(s) URL",
    ),
}


@pytest.mark.parametrize(("variables", "expected"), CASES.values(), ids=CASES)
def test_a_target_that_cannot_be_sent_to_is_exit_2_and_nothing_is_sent(
    run_cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    expected: str,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    sent: list[str] = []
    monkeypatch.setattr(notify, "_post", lambda name, *_a: sent.append(name))
    result = run_cli("notify", "--test", "--json", cwd=tmp_path)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert expected in lines[0]
    assert "s3cr3t" not in result.err + result.out
    assert sent == []


def test_after_a_delivery_an_undecodable_secret_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEX_WEBHOOK_URL", GOOD_URL)
    monkeypatch.setenv("DEX_WEBHOOK_SECRET", "s3cr3t\udcff")
    warnings: list[str] = []

    class Report:
        def out(self, text: str = "") -> None:
            pass

        def warn(self, text: str) -> None:
            warnings.append(text)

    event = notify.Event(kind="bump", envs=("dev",), tag="sha-1a2b3c4d")
    result = notify.send(Report(), event, sleep=lambda _s: None)
    assert result == {"webhook": "DEX_WEBHOOK_SECRET holds a control character or bytes that are not UTF-8"}
    assert len(warnings) == 1
    assert "s3cr3t" not in warnings[0]
