"""Dogfooding: this repository's nox sessions are the ones every consumer gets, plus `floors`."""

from __future__ import annotations

import nox

import dex_tasks.nox  # noqa: F401 - importing registers one session per task

nox.options.error_on_external_run = True

# The front door: the CLI and the poe/nox adapters, the code that the dependency floors matter to.
FRONT_DOOR_TESTS = ("tests/unit/test_poe_nox.py", "tests/unit/test_cli.py")

# Every direct dependency must be installed at exactly its `>=` floor, or the run proves nothing.
_CHECK_FLOORS = """
import re, sys, tomllib
from importlib.metadata import version
from packaging.markers import Marker
from packaging.version import Version
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
wrong = []
for dep in deps:
    if ";" in dep and not Marker(dep.split(";", 1)[1]).evaluate():
        continue  # e.g. tzdata, for Windows only: not installed here
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][^,;\\s]*)", dep.split(";")[0].strip()).groups()
    got = version(name)
    print(f"{name}: floor {floor}, installed {got}")
    if Version(got) != Version(floor):
        wrong.append(f"{name} {got} (floor {floor})")
sys.exit(f"not at the floor: {wrong}" if wrong else 0)
"""


@nox.session(name="floors", python="3.11", venv_backend="uv", default=False)
def floors(session: nox.Session) -> None:
    """Front-door tests with every direct dependency at its floor (lowest-direct), in .nox/floors.

    `uv pip install --resolution lowest-direct` into the session's own venv: unlike `uv sync
    --resolution lowest-direct` it leaves uv.lock and the project's .venv as they are.
    """
    session.install("--resolution", "lowest-direct", "-e", ".", "pytest-timeout>=2.4.0")
    session.run("python", "-c", _CHECK_FLOORS)
    session.run("python", "-m", "pytest", *FRONT_DOOR_TESTS, "-q", "-p", "no:cacheprovider", *session.posargs)
