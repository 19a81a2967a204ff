"""Benchmark: start-up cost of the two paths every user pays on every call.

    uv run python bench/startup.py [--rounds 30]

poe runs ``dex_tasks.poe:tasks()`` in a fresh interpreter on *every* ``poe`` call (tab completion
included), and every task starts with ``dex-tasks <task>``. Each is timed as a whole process, in
interleaved rounds against the floor, ``python -c pass`` with the same interpreter. Printed: the
median CPU time (user + system) and wall time of each, and their ratios to the floor; the CPU
ratio is the one to read on a busy machine.

* ``poe tasks()``: ``python -c "import dex_tasks.poe; dex_tasks.poe.tasks()"``;
* ``dex-tasks config``: the console script (``dex_tasks.cli:entry``) printing this repository's
  resolved ``[tool.dex]`` configuration, the cheapest real task.

Figures only, no assertions; the targets (issue 9) are ``poe`` <= 1.5x and ``config`` <= 6x.
"""

from __future__ import annotations

import argparse
import os
import resource  # not on Windows: this benchmark is for the CI machine kind (Linux)
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "poe tasks()": [sys.executable, "-c", "import dex_tasks.poe; dex_tasks.poe.tasks()"],
    # What the console script does (`from dex_tasks.cli import entry; entry()`), without depending
    # on where the installer put the script.
    "dex-tasks config": [sys.executable, "-c", "from dex_tasks.cli import entry; entry()", "config"],
}


def _time(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``.

    CPU time is what the ratios use: on a busy machine (2 cores shared with a test run) wall time
    mostly measures the wait for a core, while the CPU a start-up burns is the same either way.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    # Outside Actions, so gha writes nothing; the same interpreter and environment for every case.
    os.environ.pop("GITHUB_ACTIONS", None)
    # With bytecode, as an installed package runs (installers compile it): under
    # PYTHONDONTWRITEBYTECODE every run would compile dex_tasks from source, a third of the cost.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    cpus: dict[str, list[float]] = {name: [] for name in CASES}
    for argv in CASES.values():  # warm the file cache and the .pyc files once
        _time(argv)
    for _ in range(args.rounds):
        for name, argv in CASES.items():
            wall, cpu = _time(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    floor_cpu = statistics.median(cpus["python -c pass"])
    floor_wall = statistics.median(walls["python -c pass"])
    print(f"{args.rounds} interleaved rounds; medians; ratios to `python -c pass`")
    print(f"{'case':<18} {'cpu ms':>8} {'x floor':>8} {'wall ms':>9} {'x floor':>8}")
    for name in CASES:
        cpu = statistics.median(cpus[name])
        wall = statistics.median(walls[name])
        cpu_ratio, wall_ratio = cpu / floor_cpu, wall / floor_wall
        print(f"{name:<18} {cpu * 1000:>8.1f} {cpu_ratio:>7.2f}x {wall * 1000:>9.1f} {wall_ratio:>7.2f}x")


if __name__ == "__main__":
    main()
