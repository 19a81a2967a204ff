"""Put the fake trivy CLI (``tests/fakes/trivy``) on a PATH directory, as ``trivy``.

The script runs under this interpreter (its shebang is rewritten), and on Windows a ``trivy.cmd``
shim beside it is what PATHEXT finds. One installer for every test that needs trivy on PATH.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("trivy")


def install(bin_dir: Path) -> Path:
    """Copy the fake into ``bin_dir`` as ``trivy``; returns the installed script."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    body = SCRIPT.read_text(encoding="utf-8").split("\n", 1)[1]
    target = bin_dir / "trivy"
    target.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if os.name == "nt":  # pragma: no cover - Windows runs the .cmd shim
        (bin_dir / "trivy.cmd").write_text(
            f'@echo off\r\n"{sys.executable}" "%~dp0trivy" %*\r\n', encoding="utf-8"
        )
    return target
