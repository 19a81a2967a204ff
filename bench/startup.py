"""Benchmark: start-up cost of the two paths every user pays on every call.

    uv run python bench/startup.py [--rounds 30]

poe runs ``dex_tasks.poe:tasks()`` in a fresh interpreter on *every* ``poe`` call (tab completion
included), and every task starts with ``dex-tasks <task>``. Each is timed as a whole process, in
interleaved rounds against the floor, ``python -c pass`` with the same interpreter, so a busy
machine slows all three alike. Printed: the median wall time of each and its ratio to the floor.

* ``poe tasks()``: ``python -c "import dex_tasks.poe; dex_tasks.poe.tasks()"``;
* ``dex-tasks config``: the console script (``dex_tasks.cli:entry``) printing this repository's
  resolved ``[tool.dex]`` configuration, the cheapest real task.

Figures only, no assertions; the targets (issue 9) are ``poe`` <= 1.5x and ``config`` <= 6x.
"""

from __future__ import annotations

import argparse
import os
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


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    # Outside Actions, so gha writes nothing; the same interpreter and environment for every case.
    os.environ.pop("GITHUB_ACTIONS", None)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for argv in CASES.values():  # warm the file cache and the .pyc files once
        _time(argv)
    for _ in range(args.rounds):
        for name, argv in CASES.items():
            samples[name].append(_time(argv))
    floor = statistics.median(samples["python -c pass"])
    print(f"{'case':<18} {'median ms':>10} {'x floor':>8}   ({args.rounds} interleaved rounds)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<18} {median * 1000:>10.1f} {median / floor:>7.2f}x")


if __name__ == "__main__":
    main()
