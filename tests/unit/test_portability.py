"""Behaviour that differs on Windows and macOS, checked with the inputs those systems produce."""

from __future__ import annotations

from pathlib import Path

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


def test_temporary_directories_do_not_mask_errors_on_windows() -> None:
    """Every TemporaryDirectory in the package ignores cleanup errors.

    On Windows a file that is still open cannot be deleted. After a timeout the tool is killed,
    but a child of it (semgrep-core, a docker CLI plugin) may still hold a file in the directory;
    without ignore_cleanup_errors the PermissionError of the cleanup replaces the timeout error.
    """
    package = Path(image_build.__file__).parent.parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if "rules" in path.relative_to(package).parts:
            continue  # semgrep rule test targets: bad code on purpose, never imported
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "TemporaryDirectory(" in line and "ignore_cleanup_errors=True" not in line:
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert offenders == []
