"""Shared helpers of the benchmarks: timing, peak memory, interleaved runs, results CSV.

Every ``benchmarks/bench_<name>.py`` runs our implementation and its baseline interleaved in one
process (ours, baseline, ours, baseline, ...), so that drifts of the machine (page cache, thermal,
other load) hit both equally.  Peak memory is the peak resident set size (RSS) of the process
while one call runs, minus the RSS just before it, sampled from ``/proc/self/statm`` every 2 ms by
a background thread (``ru_maxrss`` cannot be reset between interleaved calls).

Usage::

    import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from _common import bench_args, interleave, print_ratio, write_results

    args = bench_args("what this benchmark measures")
    res = interleave({"ours": lambda: f(), "baseline": lambda: g()}, repeat=1 if args.quick else 3)
    print_ratio("selection_5gb", res["ours"], res["baseline"])
    write_results("selection", [{"case": "5gb", **res["ours"].row("ours"), ...}])
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import dataclasses
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Where benchmark results go (CSV, plots, summary).
RESULTS_DIR = Path(__file__).resolve().parent / "results"

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size of this process [bytes] (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


class PeakMemory:
    """Context manager: peak RSS above the starting RSS while the block runs.

    Attributes (after exit):
        start_bytes: RSS when the block started [bytes].
        peak_bytes: Highest RSS seen [bytes].
        delta_bytes: ``peak_bytes - start_bytes`` [bytes]: what the block needed on top.
    """

    def __init__(self, *, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.start_bytes = self.peak_bytes = self.delta_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if "pyarrow" in sys.modules:  # hand Arrow's cached allocations back, so the next call's peak is its own
            sys.modules["pyarrow"].default_memory_pool().release_unused()
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, rss_bytes())
        self.delta_bytes = self.peak_bytes - self.start_bytes


@dataclasses.dataclass(frozen=True)
class Timing:
    """Repeated measurements of one callable.

    Attributes:
        times_s: Wall time of each repetition [s].
        peak_mb: Largest peak RSS above the start over the repetitions [MB, 10^6 bytes].
        result: What the last call returned (for cross-checks of the numbers).
    """

    times_s: tuple[float, ...]
    peak_mb: float
    result: Any = None

    @property
    def median_s(self) -> float:
        """Median wall time [s]."""
        return statistics.median(self.times_s)

    @property
    def best_s(self) -> float:
        """Fastest wall time [s]."""
        return min(self.times_s)

    def row(self, prefix: str) -> dict[str, float]:
        """CSV fields ``<prefix>_median_s``, ``<prefix>_best_s``, ``<prefix>_peak_mb``."""
        return {
            f"{prefix}_median_s": round(self.median_s, 4),
            f"{prefix}_best_s": round(self.best_s, 4),
            f"{prefix}_peak_mb": round(self.peak_mb, 1),
        }


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``fn`` once; return (wall time [s], peak RSS above start [MB], result)."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
    return elapsed, mem.delta_bytes / 1e6, result


def interleave(cases: Mapping[str, Callable[[], Any]], *, repeat: int = 3, warmup: int = 0) -> dict[str, Timing]:
    """Run every case ``warmup + repeat`` times, round-robin (a, b, a, b, ...); time the last ``repeat``.

    Args:
        cases: Name -> zero-argument callable.
        repeat: Timed rounds.
        warmup: Untimed rounds first (imports, page cache, JIT).

    Returns:
        Name -> :class:`Timing`.
    """
    times: dict[str, list[float]] = {k: [] for k in cases}
    peaks: dict[str, float] = dict.fromkeys(cases, 0.0)
    results: dict[str, Any] = {}
    for i in range(warmup + repeat):
        for name, fn in cases.items():
            elapsed, peak, results[name] = measure(fn)
            if i >= warmup:
                times[name].append(elapsed)
                peaks[name] = max(peaks[name], peak)
    return {k: Timing(tuple(times[k]), peaks[k], results.get(k)) for k in cases}


#: OpenBLAS thread-count functions, (get, set), of the builds numpy and scipy ship (scipy-openblas, 64- and 32-bit
#: integer interfaces) and of a plain OpenBLAS.
_OPENBLAS_THREADS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


@contextlib.contextmanager
def blas_threads(n: int):
    """Limit every OpenBLAS loaded in this process to ``n`` threads while the block runs (then restore).

    pyhf's scipy optimizer (SLSQP, whose subproblems call LAPACK) on a few hundred parameters slowed down by
    10-70x with OpenBLAS's default threads on this 2-core machine (fixed-mu fits of the default workspace:
    2.5 s with one thread, 70-190 s with two, measured 2026-11-30), so the pyhf baselines run with one.
    """
    libs = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get, set_ in _OPENBLAS_THREADS:
            if hasattr(lib, get) and hasattr(lib, set_):
                libs.append((getattr(lib, set_), getattr(lib, get)()))
                getattr(lib, set_)(n)
                break
    try:
        yield len(libs)
    finally:
        for set_, before in libs:
            set_(before)


def child_peak_mb(code: str, *, cwd: Path | None = None) -> tuple[float, str]:
    """Run ``code`` in a fresh Python process; return its peak RSS [MB] (``VmHWM``) and its stdout.

    A fresh process measures what one call needs without the allocator caches of earlier calls.
    """
    # VmHWM: the high-water mark of this process's own memory (ru_maxrss would include the RSS the
    # parent had when it forked the child, which Linux carries across exec)
    wrapper = (
        f"{code}\nimport re, sys\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "sys.stdout.write('\\n__peak_kb__ %s\\n' % hwm)"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper], cwd=cwd, capture_output=True, text=True, check=True)
    out, _, peak = proc.stdout.rpartition("__peak_kb__ ")
    return int(peak.strip()) / 1e3, out


def ratio_line(name: str, ours: Timing, baseline: Timing) -> str:
    """``name: ours X s, baseline Y s, ratio Y/X`` plus peak memory (medians)."""
    ratio = baseline.median_s / ours.median_s if ours.median_s > 0 else float("inf")
    return (
        f"{name}: ours {ours.median_s:.3f} s, baseline {baseline.median_s:.3f} s, ratio {ratio:.2f} "
        f"(peak memory ours {ours.peak_mb:.0f} MB, baseline {baseline.peak_mb:.0f} MB)"
    )


def print_ratio(name: str, ours: Timing, baseline: Timing) -> float:
    """Print :func:`ratio_line`; return the ratio baseline/ours."""
    print(ratio_line(name, ours, baseline), flush=True)
    return baseline.median_s / ours.median_s if ours.median_s > 0 else float("inf")


def write_results(name: str, rows: Sequence[Mapping[str, Any]], *, directory: Path | None = None) -> Path:
    """Write ``<directory>/<name>.csv`` (default ``benchmarks/results/``) atomically; return its path.

    The header is the union of the rows' keys in first-seen order.
    """
    out_dir = directory or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    path = out_dir / f"{name}.csv"
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def bench_args(
    description: str,
    *,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse the common options: ``--quick`` (small sizes, one repetition) and ``--results DIR``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition (smoke run)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="directory for the CSV and plots (default: benchmarks/results/, with --quick "
        "benchmarks/results/quick/ so that a smoke run never replaces measured results)",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    return args
