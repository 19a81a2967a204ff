"""redact.redact: secrets from the environment and credentials inside URLs never reach output."""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING

import pytest

from dex_tasks import proc, redact
from dex_tasks.errors import CommandFailed

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import CliRunner

PY = sys.executable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "fatal: could not read from https://x-access-token:ghs_abc123@github.com/o/r.git",
            "fatal: could not read from https://x-access-token:***@github.com/o/r.git",
        ),
        ("https://ghp_abc123@github.com/o/r", "https://***@github.com/o/r"),
        ("GET http://admin:s3cret@127.0.0.1:8080/healthz", "GET http://admin:***@127.0.0.1:8080/healthz"),
        ("$ git push 'https://u:pw@host/x'", "$ git push 'https://u:***@host/x'"),
        ("ssh://deploy:pw@host:22/r.git", "ssh://deploy:***@host:22/r.git"),
        # Nothing secret here: a user name alone over ssh, scp-like remotes, plain URLs.
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        (
            "https://github.com/o/r/compare/main...dex/bump?expand=1",
            "https://github.com/o/r/compare/main...dex/bump?expand=1",
        ),
    ],
)
def test_credentials_in_urls_are_masked(text: str, expected: str) -> None:
    assert redact.redact(text) == expected


@pytest.mark.parametrize("var", ["ARGOCD_AUTH_TOKEN", "DEX_REGISTRY_PASSWORD"])
def test_tool_secrets_from_the_environment_are_masked_before_anyone_registers_them(
    var: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e.g. `kubectl`/`docker` failing before the argocd or registry code ran and registered it.
    monkeypatch.setenv(var, "planted-secret-4711")
    code = f"import os, sys; sys.stderr.write('bad credentials: ' + os.environ[{var!r}]); sys.exit(1)"
    echo = io.StringIO()
    with proc.session(echo_to=echo), pytest.raises(CommandFailed) as caught:
        proc.run([PY, "-c", code, "planted-secret-4711"], read_only=True)
    assert "planted-secret-4711" not in str(caught.value)
    assert "planted-secret-4711" not in caught.value.stderr_tail
    assert "planted-secret-4711" not in echo.getvalue()
    assert "bad credentials: ***" in str(caught.value)


def test_redact_data_keeps_the_json_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_planted")
    data = {"url": "https://u:pw@h/x", "n": 1, "ok": True, "none": None, "list": ["ghs_planted", 2]}
    assert redact.redact_data(data) == {
        "url": "https://u:***@h/x",
        "n": 1,
        "ok": True,
        "none": None,
        "list": ["***", 2],
    }


def test_actions_outputs_summary_and_annotations_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dex_tasks import gha  # noqa: PLC0415 - after the environment is set

    outputs, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GH_TOKEN", "ghs_planted_for_gha")
    gha.set_output("url", "https://u:pw-planted@h/x")
    gha.set_output("multi", "a\nghs_planted_for_gha")
    gha.summary("pushed with ghs_planted_for_gha to https://u:pw-planted@h/x")
    gha.annotation("error", "failed at https://u:pw-planted@h/x")
    written = outputs.read_text(encoding="utf-8") + summary.read_text(encoding="utf-8")
    written += capsys.readouterr().err
    assert "pw-planted" not in written
    assert "ghs_planted_for_gha" not in written
    assert "url=https://u:***@h/x" in written


@pytest.mark.timeout(60)
def test_github_token_is_not_sent_to_a_pagination_link_on_another_host() -> None:
    from dex_tasks.errors import RemoteError  # noqa: PLC0415 - beside the client it is about
    from dex_tasks.tools.github import GitHub  # noqa: PLC0415 - requests only here
    from tests.fakes.github_api import FakeGitHub  # noqa: PLC0415 - only this test needs the fake

    token = "ghs_planted_for_pagination"  # planted, to be searched for
    with FakeGitHub(token=token, repo="o/r") as api, FakeGitHub(token="other", repo="o/r") as elsewhere:
        api.add_pull(head="dex/x", base="main")
        foreign = f"{elsewhere.url}/repos/o/r/issues/1/comments?page=2"
        api.fail_next("GET", "/repos/o/r/issues/1/comments", status=200, body=[],
                      headers={"Link": f'<{foreign}>; rel="next"'})  # fmt: skip
        with (
            GitHub(repo="o/r", token=token, api_url=api.url, retries=0) as client,
            pytest.raises(RemoteError, match="next page is not on"),
        ):
            client.upsert_comment(number=1, body="hello", marker="<!-- dex:t -->")
        assert elsewhere.requests == []


def test_doctor_does_not_take_another_secret_for_the_github_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_cli: CliRunner
) -> None:
    # ARGOCD_AUTH_TOKEN and DEX_REGISTRY_PASSWORD are redacted like the GitHub token, but are no
    # GitHub token: doctor must still say that one is missing.
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "argocd-planted")
    monkeypatch.setenv("DEX_REGISTRY_PASSWORD", "registry-planted")
    result = run_cli("doctor", "--json", cwd=tmp_path)
    assert json.loads(result.out)["github_token"] == {"present": False, "env": None}
    assert "argocd-planted" not in result.out + result.err
    assert "registry-planted" not in result.out + result.err
