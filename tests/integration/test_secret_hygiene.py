"""Planted secrets never reach any output channel: stdout (--json), stderr, the error line,
``$GITHUB_OUTPUT`` and the job summary.

The secret here is a password inside a URL (``verify --url http://user:PASSWORD@host/health``, a
common way to reach a basic-auth health endpoint): nobody registers it, so only the URL-aware
redaction stands between it and the log. The health server checks the credentials, so the test
also proves they are still *used*.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from tests.helpers import serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import CliRunner
    from tests.gitops_fixtures import GitOpsRepo

pytestmark = pytest.mark.timeout(120)

PASSWORD = "planted-pw-9c1e"  # planted, to be searched for
TOKEN = "ghs_planted_token_5b7d"  # planted, to be searched for
FAST = ("--interval", "0", "--attempts", "2")


class BasicAuthHealth:
    """``GET /health`` with basic auth ``admin:PASSWORD``: ``status`` when authorized, else 401."""

    def __init__(self) -> None:
        self.status = 200
        self.authorized = 0
        outer = self
        expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = self.headers.get("Authorization") == expected
                outer.authorized += ok
                code = outer.status if ok else 401
                # A server that echoes the request URL with its credentials back in the body.
                body = f"status {code} for {outer.url}".encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://admin:{PASSWORD}@127.0.0.1:{self.server.server_address[1]}/health"


@pytest.fixture
def health() -> Iterator[BasicAuthHealth]:
    server = BasicAuthHealth()
    with serving(server.server):
        yield server


@pytest.fixture
def channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Run as in GitHub Actions, with a token in the environment; returns (outputs, summary)."""
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return outputs, summary


def _everything(out: str, err: str, outputs: Path, summary: Path) -> str:
    """All channels, minus ``::add-mask::`` lines: those tell the runner what to hide (it does not
    print them), and registering a secret there is the point."""
    files = "".join(p.read_text(encoding="utf-8") for p in (outputs, summary) if p.exists())
    lines = (out + err + files).splitlines()
    return "\n".join(line for line in lines if not line.startswith("::add-mask::"))


@pytest.mark.parametrize("status", [200, 503])
def test_verify_url_password_reaches_no_output(
    status: int,
    repo: GitOpsRepo,
    health: BasicAuthHealth,
    channels: tuple[Path, Path],
    run_cli: CliRunner,
) -> None:
    health.status = status
    result = run_cli("verify", "stage", "--url", health.url, "--json", *FAST, cwd=repo.clone)
    assert result.code == (0 if status == 200 else 1), result.err
    assert health.authorized >= 1  # the credentials were sent
    data = json.loads(result.out)  # still one valid JSON object
    assert data["health"]["url"].startswith("http://admin:***@127.0.0.1:")
    everything = _everything(result.out, result.err, *channels)
    assert PASSWORD not in everything
    assert TOKEN not in everything
    assert channels[1].exists()  # the summary was written (and searched)


def test_verify_url_password_not_in_the_error_line(
    repo: GitOpsRepo, health: BasicAuthHealth, channels: tuple[Path, Path], run_cli: CliRunner
) -> None:
    health.status = 503
    result = run_cli("verify", "stage", "--url", health.url, *FAST, cwd=repo.clone)
    assert result.code == 1
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("dex-tasks verify: verify stage failed: http://admin:***@127.0.0.1:")
    assert PASSWORD not in _everything(result.out, result.err, *channels)


def test_token_in_the_origin_url_reaches_no_output(
    repo: GitOpsRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: CliRunner
) -> None:
    # A clone made with `git clone https://x-access-token:TOKEN@github.com/...` keeps the token in
    # its origin URL. The PR/compare URL is derived from that remote: the token must not come along.
    from dex_tasks.tools import git as git_tool  # noqa: PLC0415 - patched for this test only

    remote_token = "ghp_remote_planted_0a1b"  # planted, to be searched for
    url = f"https://x-access-token:{remote_token}@github.com/data-literate/dex.git"
    real = git_tool.remote_url
    monkeypatch.setattr(git_tool, "remote_url", lambda root, remote="origin": real(root, remote) and url)
    outputs, summary = tmp_path / "github_output", tmp_path / "step_summary"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for argv in (("--dry-run",), ()):
        result = run_cli("bump-overlay", "dev", repo.tags[4], "--json", *argv, cwd=repo.clone)
        assert result.code == 0, result.err
        assert remote_token not in _everything(result.out, result.err, outputs, summary)
    data = json.loads(result.out)
    assert data["compare_url"] == (
        f"https://github.com/data-literate/dex/compare/dev...dex/bump-dev-{repo.tags[4]}?expand=1"
    )
