"""Benchmark: the trivy gate (dex_tasks.scan) over generated reports with 10k and 100k findings.

    uv run python bench/trivy_gate.py [--sizes 10000,100000] [--targets 8] [--repeat 3]

For each size a schema-2 report is written to a temporary file (several targets, severities mixed
like a real image: few CRITICAL, many MEDIUM/LOW, some UNKNOWN, a share without a fix), then a
fresh interpreter measures:

* time of parse + evaluate (``scan.evaluate_file``), best of ``--repeat`` runs;
* peak resident set size of that process over the timed runs (``resource.getrusage(...).ru_maxrss``;
  not on Windows), taken before tracing starts;
* peak Python heap during one more evaluation (tracemalloc, in a separate run because tracing
  slows the interpreter down several times and inflates the RSS).

Figures are printed, with the ratio of each size to the first; there are no assertions.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dex_tasks import scan  # noqa: E402 - after the path setup above, so it runs from a checkout

SEVERITY_WEIGHTS = {"CRITICAL": 2, "HIGH": 10, "MEDIUM": 40, "LOW": 40, "UNKNOWN": 8}


def generate(path: Path, findings: int, targets: int, seed: int = 7) -> dict[str, int]:
    """Write a report with ``findings`` vulnerabilities spread over ``targets`` targets."""
    rng = random.Random(seed)
    severities = list(SEVERITY_WEIGHTS)
    weights = list(SEVERITY_WEIGHTS.values())
    counts = dict.fromkeys(severities, 0)
    results = []
    per_target = [findings // targets + (1 if i < findings % targets else 0) for i in range(targets)]
    serial = 0
    for t, size in enumerate(per_target):
        vulns = []
        for _ in range(size):
            serial += 1
            severity = rng.choices(severities, weights)[0]
            counts[severity] += 1
            fixed = (
                "" if rng.random() < 0.3 else f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            )
            vulns.append({
                "VulnerabilityID": f"CVE-20{rng.randint(10, 25)}-{serial:06d}",
                "PkgID": f"pkg{serial % 997}@1.0.{serial % 13}",
                "PkgName": f"pkg{serial % 997}",
                "InstalledVersion": f"1.0.{serial % 13}",
                "FixedVersion": fixed,
                "Status": "fixed" if fixed else "affected",
                "SeveritySource": "nvd",
                "PrimaryURL": f"https://avd.aquasec.com/nvd/cve-{serial}",
                "Title": f"pkg{serial % 997}: a generated vulnerability number {serial}",
                "Description": "Generated for the benchmark. " * 4,
                "Severity": severity,
                "CweIDs": ["CWE-787"],
                "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": 9.8}},
                "References": [f"https://example.invalid/{serial}/{i}" for i in range(3)],
                "PublishedDate": "2024-01-01T00:00:00Z",
                "LastModifiedDate": "2024-02-01T00:00:00Z",
            })  # fmt: skip
        kind = ("os-pkgs", "debian") if t == 0 else ("lang-pkgs", "python-pkg")
        results.append({"Target": f"target-{t}", "Class": kind[0], "Type": kind[1], "Vulnerabilities": vulns})
    report = {"SchemaVersion": 2, "ArtifactName": "bench/app:sha-0123abcd", "ArtifactType": "container_image",
              "Results": results}  # fmt: skip
    path.write_text(json.dumps(report), encoding="utf-8")
    return counts


def _child(path: Path, repeat: int) -> None:
    """Runs in a fresh interpreter: time, then heap peak; prints one JSON line."""
    times = []
    verdict = None
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = scan.evaluate_file(path)
        times.append(time.perf_counter() - start)
    assert verdict is not None  # noqa: S101 - repeat >= 1
    # RSS before tracing starts: tracemalloc's own bookkeeping would inflate it.
    rss = None
    try:
        import resource  # noqa: PLC0415 - POSIX only

        # ru_maxrss is KiB on Linux, bytes on macOS
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    except ImportError:  # pragma: no cover - Windows
        pass
    tracemalloc.start()
    scan.evaluate_file(path)
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "best_s": min(times), "mean_s": sum(times) / len(times), "heap_peak": heap_peak, "rss_peak": rss,
        "total": verdict.total, "blocking": len(verdict.blocking), "warnings": len(verdict.warnings),
    }))  # fmt: skip


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:8.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeat)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]} on {sys.platform}; {args.targets} targets; best of {args.repeat}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dex-bench-") as tmp:
        probe = (
            "import resource, sys; sys.path.insert(0, sys.argv[1]); import dex_tasks.scan; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        baseline = subprocess.run(
            [sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True, check=False
        )
        base_rss = (
            int(baseline.stdout) * 1024 if baseline.returncode == 0 and sys.platform != "darwin" else None
        )
        for size in sizes:
            path = Path(tmp) / f"report-{size}.json"
            counts = generate(path, size, args.targets)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--repeat", str(args.repeat)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            figures = json.loads(done.stdout)
            rows.append((size, path.stat().st_size, counts, figures))
    first = rows[0]
    for size, file_size, counts, fig in rows:
        ratio = size / first[0]
        print(
            f"\n{size:>7} findings ({_mib(file_size).strip()} JSON): "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
        print(f"  parse+evaluate  best {fig['best_s'] * 1000:8.1f} ms   mean {fig['mean_s'] * 1000:8.1f} ms"
              f"   ({fig['best_s'] / size * 1e6:.2f} us/finding)")  # fmt: skip
        print(f"  heap peak       {_mib(fig['heap_peak'])}   ({fig['heap_peak'] / file_size:.1f}x the file)")
        base = _mib(base_rss).strip()
        print(f"  rss peak        {_mib(fig['rss_peak'])}   (interpreter + dex_tasks.scan alone: {base})")
        found = f"{fig['total']} counted, {fig['blocking']} blocking, {fig['warnings']} warnings"
        print(f"  verdict         {found}")
        if size != first[0]:
            f0 = first[3]
            print(f"  vs {first[0]}: x{ratio:g} findings -> time x{fig['best_s'] / f0['best_s']:.1f}, "
                  f"heap x{fig['heap_peak'] / f0['heap_peak']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
