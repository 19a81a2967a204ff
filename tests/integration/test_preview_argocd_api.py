"""``preview down`` without the argocd CLI (GitHub's hosted runners): Argo CD's REST API.

Against :mod:`tests.fakes.argocd_api` (argocd-server's REST gateway, v2.x wire format).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING

import pytest

from dex_tasks.errors import UsageError
from dex_tasks.tools import argocd_api
from tests.fakes.argocd_api import FakeArgoCDAPI
from tests.fakes.github_api import FakeGitHub
from tests.helpers import moved_clock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import CliResult, CliRunner

IMAGE = "ghcr.io/data-literate/dex"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeArgoCDAPI]:
    """The fake API; ARGOCD_* point at it; no argocd CLI on PATH; no waiting between retries."""
    directories = os.environ.get("PATH", "").split(os.pathsep)
    path = os.pathsep.join(d for d in directories if d and not (shutil.which("argocd", path=d)))
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(argocd_api, "BACKOFF", 0.0)
    with FakeArgoCDAPI() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        yield fake


def _error_line(result: CliResult) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("dex-tasks preview:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


def test_the_deadline_counts_from_the_first_request(
    api: FakeArgoCDAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made, then used only after more than its deadline (a loaded runner descheduled the task in
    # between): the client still asks once instead of "no time left".
    api.add_app("dex-pr-3", namespace="dex-pr-3", image=f"{IMAGE}:pr-3")
    move = moved_clock(monkeypatch, argocd_api)
    with argocd_api.ArgoCDAPI(url=f"http://{api.server}", token=api.token, deadline=30) as client:
        move(60)
        assert client.get_app("dex-pr-3")["metadata"]["name"] == "dex-pr-3"


def test_down_deletes_the_app_through_the_api(api: FakeArgoCDAPI, run_cli: CliRunner, tmp_path: Path) -> None:
    api.add_app("dex-pr-12", namespace="dex-pr-12", image=f"{IMAGE}:pr-12")
    dry = run_cli("preview", "down", "12", "--dry-run", cwd=tmp_path)
    assert dry.code == 0, dry.err
    assert f"would DELETE http://{api.server}/api/v1/applications/dex-pr-12?cascade=true" in dry.err
    assert api.writes() == []
    assert "dex-pr-12" in api.apps

    result = run_cli("preview", "down", "12", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["deleted"], data["changed"], data["argocd_via"]) == ("app/dex-pr-12", True, "api")
    assert "dex-pr-12" not in api.apps
    (delete,) = api.writes()
    assert (delete.method, delete.path, delete.query) == (
        "DELETE",
        "/api/v1/applications/dex-pr-12",
        {"cascade": "true"},
    )
    assert delete.headers["authorization"] == f"Bearer {api.token}"
    assert api.token not in result.out + result.err + dry.err

    again = run_cli("preview", "down", "12", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    assert json.loads(again.out)["changed"] is False
    assert "does not exist" in again.err
    assert len(api.writes()) == 1


def test_down_app_hidden_by_argocd_2_5_is_nothing_to_do(
    api: FakeArgoCDAPI, run_cli: CliRunner, tmp_path: Path
) -> None:
    api.hide_missing = True  # 403 PermissionDenied for an app that does not exist
    result = run_cli("preview", "down", "3", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out)["deleted"] is None
    assert api.writes() == []


@pytest.mark.parametrize("case", ["expired", "wrong-token", "delete-denied"])
def test_down_refused_token_is_exit_2_and_changes_nothing(
    api: FakeArgoCDAPI, run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    api.add_app("dex-pr-7", namespace="dex-pr-7", image=f"{IMAGE}:pr-7")
    expected = {
        "expired": "401 invalid session: token is expired (code 16)",
        "wrong-token": "401 invalid session: signature is invalid (code 16)",
        "delete-denied": "403 permission denied (code 7)",
    }[case]
    if case == "expired":
        api.expired = True
    elif case == "wrong-token":
        monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "not-the-token")
    else:
        api.deny.add(("DELETE", "dex-pr-7"))
    with FakeGitHub(repo="data-literate/dex") as gh:
        for key, value in gh.env().items():
            monkeypatch.setenv(key, value)
        gh.add_pull(head="feature", base="main")
        gh.add_comment(1, "<!-- dex-tasks:preview -->\nup")
        result = run_cli("preview", "down", "7", cwd=tmp_path)
        assert result.code == 2, result.err
        line = _error_line(result)
        assert expected in line
        assert "ARGOCD_AUTH_TOKEN" in line
        assert "dex-pr-7" in api.apps
        assert [c["body"] for c in gh.comments.values()] == ["<!-- dex-tasks:preview -->\nup"]
        assert gh.requests == []
    assert "waiting for" not in result.err  # nothing retried
    assert api.token not in result.err


def test_down_retries_5xx_with_progress_then_deletes(
    api: FakeArgoCDAPI, run_cli: CliRunner, tmp_path: Path
) -> None:
    api.add_app("dex-pr-9", namespace="dex-pr-9", image=f"{IMAGE}:pr-9")
    api.fail_next("DELETE", status=503, times=2)
    result = run_cli("preview", "down", "9", cwd=tmp_path)
    assert result.code == 0, result.err
    waiting = [line for line in result.err.splitlines() if "waiting for Argo CD API" in line]
    what = "# waiting for Argo CD API DELETE /api/v1/applications/dex-pr-9"
    why = "next try in 0.0s): 503 connection refused (code 14)"
    assert waiting == [f"{what} (attempt 2/3, {why}", f"{what} (attempt 3/3, {why}"]
    assert "dex-pr-9" not in api.apps


def test_down_unreachable_api_is_exit_4(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    port = closed_port  # a port nobody listens on (held for the test, so nobody can)
    monkeypatch.setattr(argocd_api, "BACKOFF", 0.0)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("ARGOCD_SERVER", f"127.0.0.1:{port}")
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "t0ken-value")
    monkeypatch.setenv("ARGOCD_OPTS", "--plaintext")
    result = run_cli("preview", "down", "5", cwd=tmp_path)
    assert result.code == 4, result.err
    line = _error_line(result)
    assert "cannot connect (connection refused)" in line
    assert "object at 0x" not in result.err
    assert len([x for x in result.err.splitlines() if x.startswith("# waiting for Argo CD API")]) == 2


def test_server_without_cli_or_token_is_exit_3_naming_both_fixes(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGOCD_SERVER", "argocd.example.invalid")
    monkeypatch.delenv("ARGOCD_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("preview", "down", "4", cwd=tmp_path)
    assert result.code == 3, result.err
    line = _error_line(result)
    assert "argocd" in line
    assert "ARGOCD_AUTH_TOKEN" in line


@pytest.mark.parametrize(
    ("server", "opts", "expected"),
    [
        ("argocd.example.com", "", ("https://argocd.example.com", True)),
        ("argocd.example.com:8443", "--grpc-web", ("https://argocd.example.com:8443", True)),
        ("argocd.example.com", "--grpc-web --insecure", ("https://argocd.example.com", False)),
        ("127.0.0.1:8080", "--plaintext", ("http://127.0.0.1:8080", True)),
        ("https://argocd.example.com/", "", ("https://argocd.example.com", True)),
    ],
)
def test_base_url_reads_argocd_opts_like_the_cli(server: str, opts: str, expected: tuple[str, bool]) -> None:
    assert argocd_api.base_url({"ARGOCD_SERVER": server, "ARGOCD_OPTS": opts}) == expected


@pytest.mark.parametrize("server", ["argocd.example.com/path", "", "a b"])
def test_base_url_refuses_what_is_not_a_host(server: str) -> None:
    with pytest.raises(UsageError, match="ARGOCD_SERVER"):
        argocd_api.base_url({"ARGOCD_SERVER": server})
