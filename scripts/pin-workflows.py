"""Pin the consumer workflows (examples/ and init's templates) to the last commit that changed ours.

    python scripts/pin-workflows.py [SHA]

A commit cannot name itself, so a change to `.github/workflows/` is committed first and the pins
move in the next commit; `tests/unit/test_workflow_structure.py` fails until they do. SHA defaults
to the newest commit that touched `.github/workflows/`. Rewrites only the `@<sha> # dex-tasks <v>`
part of each `uses: data-literate/dex-tasks/...` line, in both places that hold one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACES = (ROOT / "examples" / "workflows", ROOT / "dex_tasks" / "scaffold" / "templates" / "workflows")
USES_RE = re.compile(
    r"(uses: data-literate/dex-tasks/\.github/workflows/[\w.-]+\.yml)@[0-9a-f]{40} # dex-tasks \S+"
)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def main() -> None:
    sha = (
        sys.argv[1]
        if len(sys.argv) > 1
        else _git("log", "-1", "--format=%H", "--", ".github/workflows").strip()
    )
    sha = _git("rev-parse", f"{sha}^{{commit}}").strip()
    version = tomllib.loads(_git("show", f"{sha}:pyproject.toml"))["project"]["version"]
    changed = 0
    for place in PLACES:
        for path in sorted(place.glob("*.yml")):
            text = path.read_text(encoding="utf-8")
            new = USES_RE.sub(rf"\1@{sha} # dex-tasks {version}", text)
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed += 1
    print(f"pinned to {sha} (dex-tasks {version}): {changed} file(s) changed")


if __name__ == "__main__":
    main()
