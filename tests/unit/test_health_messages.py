"""``verify`` / ``preview health`` messages: the status and one line of the body, never a page or
urllib3's repr; a progress line per retry that is not an error line (issue 10, class 6)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from dex_tasks import cluster, progress

if TYPE_CHECKING:
    from collections.abc import Iterator

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    + "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" * 6
    + "</body>\r\n</html>\r\n"
)


class _Page(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet."""

    def do_GET(self) -> None:
        data = NGINX_502.encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def bad_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_html_502_page_is_one_line(bad_gateway: str, capsys: pytest.CaptureFixture[str]) -> None:
    health = cluster.http_health(bad_gateway, attempts=2, interval=0)
    assert not health.ok
    assert health.detail.startswith("HTTP 502: <html> <head><title>502 Bad Gateway</title></head>")
    assert "\n" not in health.detail
    assert len(health.detail) < 250  # the head of the page, never the page
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"# waiting for {bad_gateway} (attempt 2/2, next try in 0.0s): {health.detail}"


def test_connection_refused_says_so_without_urllib3_reprs(
    capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    health = cluster.http_health(f"http://127.0.0.1:{closed_port}/health", attempts=1, interval=0)
    assert health.detail == "no answer: connection refused"
    assert capsys.readouterr().err == ""  # one attempt: nothing to wait for


def test_read_timeout_names_the_timeout() -> None:
    # A listener that never answers: accepted by the kernel backlog, never read.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        health = cluster.http_health(f"http://127.0.0.1:{port}/", attempts=1, interval=0, request_timeout=0.2)
    assert health.detail == "no answer: no answer within 0.2s (read timeout)"
    assert "object at 0x" not in health.detail


def test_progress_line_shape(capsys: pytest.CaptureFixture[str]) -> None:
    progress.waiting("GitHub API", 2, 5, 2.0, "HTTP 502\nsecond line")
    progress.waiting("rollout of deployment/dex in dex-prod", 1, 1)
    assert capsys.readouterr().err.splitlines() == [
        "# waiting for GitHub API (attempt 2/5, next try in 2.0s): HTTP 502 second line",
        "# waiting for rollout of deployment/dex in dex-prod (attempt 1/1)",
    ]
