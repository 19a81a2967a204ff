"""Behaviour that differs on Windows and macOS, checked with the inputs those systems produce."""

from __future__ import annotations

import pytest

from dex_tasks.tasks import image_build


@pytest.mark.parametrize(
    "remote",
    ["C:\\Users\\me\\src\\dex", "C:/src/dex.git", "d:\\repos\\dex.git"],
)
def test_a_windows_path_remote_is_no_source_url(remote: str) -> None:
    # `git clone C:\src\dex` leaves that path as origin; it is no host "C" with a web UI.
    assert image_build.normalize_source_url(remote) is None


def test_scp_like_remotes_still_are_source_urls() -> None:
    assert image_build.normalize_source_url("git@github.com:o/r.git") == "https://github.com/o/r"
    assert image_build.normalize_source_url("gh:o/r") == "https://gh/o/r"  # a two-letter ssh alias
