"""With ``persist-credentials: false`` no token is in ``.git/config``: our own git processes get it
through their environment (``GIT_CONFIG_COUNT``), as the header actions/checkout would persist.

The real git against a small HTTP server on 127.0.0.1 that records the ``Authorization`` headers it
receives (and answers 404, so git stops after its first request).
"""

from __future__ import annotations

import base64
import http.server
from typing import TYPE_CHECKING, ClassVar

import pytest

from dex_tasks.tools import git
from tests.helpers import git as run_git
from tests.helpers import serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dex_tasks import proc

pytestmark = pytest.mark.timeout(60)

TOKEN = "ghs_sixteen_chars_token_0123456789"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[list[str]]] = []

    def do_GET(self) -> None:  # a smart-http client's first request: GET /info/refs?service=...
        self.seen.append(self.headers.get_all("Authorization") or [])
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads ``seen``."""


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen = []
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)) as srv:
        yield f"http://127.0.0.1:{srv.server_address[1]}"


def _ls_remote(repo: Path, url: str) -> proc.Result:
    return git.git("ls-remote", url, cwd=repo, read_only=True, check=False, quiet=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    run_git("init", "--quiet", str(tmp_path / "r"), cwd=tmp_path)
    return tmp_path / "r"


def test_the_token_reaches_git_through_the_environment_only(
    repo: Path, server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", server)
    monkeypatch.setenv("GITOPS_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_the_other_token_not_used_here")
    result = git.git("ls-remote", f"{server}/o/r.git", cwd=repo, read_only=True, check=False)
    assert not result.ok  # the server answers 404
    assert _Recorder.seen == [[f"basic {BASIC}"]]  # GITOPS_TOKEN first, exactly one header
    assert TOKEN not in " ".join(result.argv)
    assert BASIC not in " ".join(result.argv)
    assert TOKEN not in (repo / ".git" / "config").read_text(encoding="utf-8")
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert BASIC not in err


def test_a_header_a_checkout_persisted_is_replaced_not_doubled(
    repo: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_git("config", f"http.{server}/.extraheader", "AUTHORIZATION: basic persisted", cwd=repo)
    monkeypatch.setenv("GITHUB_SERVER_URL", server)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    # The user's own GIT_CONFIG_* entries stay; ours come after them.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "Kept Name")
    _ls_remote(repo, f"{server}/o/r.git")
    assert _Recorder.seen == [[f"basic {BASIC}"]]
    name = git.git("config", "user.name", cwd=repo, read_only=True, quiet=True)
    assert name.stdout.strip() == "Kept Name"


def test_no_header_for_another_server_or_without_a_token(
    repo: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)  # GITHUB_SERVER_URL unset: github.com only
    _ls_remote(repo, f"{server}/o/r.git")
    monkeypatch.setenv("GITHUB_SERVER_URL", server)
    monkeypatch.delenv("GITHUB_TOKEN")
    _ls_remote(repo, f"{server}/o/r.git")
    assert _Recorder.seen == [[], []]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {}),
        ({"GITHUB_TOKEN": " "}, {}),
        ({"GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "ftp://example.com"}, {}),
        (
            {"GH_TOKEN": TOKEN},
            {
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "http.https://github.com/.extraheader",
                "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": "http.https://github.com/.extraheader",
                "GIT_CONFIG_VALUE_1": f"AUTHORIZATION: basic {BASIC}",
            },
        ),
        (
            {"GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://GHE.example.com/", "GIT_CONFIG_COUNT": "3"},
            {
                "GIT_CONFIG_COUNT": "5",
                "GIT_CONFIG_KEY_3": "http.https://GHE.example.com/.extraheader",
                "GIT_CONFIG_VALUE_3": "",
                "GIT_CONFIG_KEY_4": "http.https://GHE.example.com/.extraheader",
                "GIT_CONFIG_VALUE_4": f"AUTHORIZATION: basic {BASIC}",
            },
        ),
    ],
)
def test_auth_env(environ: dict[str, str], expected: dict[str, str]) -> None:
    assert git.auth_env(environ) == expected
