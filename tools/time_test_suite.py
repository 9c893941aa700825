"""How much `make test`'s two passes save over one plain `pytest` run, as a ratio of alternated runs.

The split run is the Makefile's `test` target: the tests not marked `serial` in pytest-xdist workers, then the
`serial` ones alone. The plain run is `pytest` over the same files. The two alternate, ROUNDS times each, so
that a machine shared with other work slows both alike; the summary gives each run's wall time and the
median of the ratios split / plain (below 1: the split run is faster).

    python tools/time_test_suite.py                       # the whole suite, once each way (about 15 min)
    python tools/time_test_suite.py tests/test_peak.py tests/test_resume_key.py --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMON = ["-q", "-p", "no:cacheprovider"]


def plain(paths: list[str]) -> list[list[str]]:
    return [[sys.executable, "-m", "pytest", *paths, *COMMON]]


def split(paths: list[str], workers: int) -> list[list[str]]:
    """The Makefile's `test` target over ``paths``."""
    return [[sys.executable, "-m", "pytest", *paths, *COMMON, "-n", str(workers), "--dist", "loadfile", "-m", "not serial"],
            [sys.executable, "-m", "pytest", *paths, *COMMON, "-m", "serial"]]


def timed(commands: list[list[str]]) -> tuple[float, str]:
    """Wall seconds of the commands in a row, and the last summary line of each (pytest's exit 5 is no failure)."""
    began, lines = time.perf_counter(), []
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        summary = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode not in (0, 5):
            sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        lines.append(summary)
    return time.perf_counter() - began, " | ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["tests/"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ratios = []
    for n in range(args.rounds):
        plain_s, plain_summary = timed(plain(args.paths))
        split_s, split_summary = timed(split(args.paths, args.workers))
        ratios.append(split_s / plain_s)
        print(f"round {n + 1}: plain {plain_s:.1f} s ({plain_summary}); split {split_s:.1f} s ({split_summary}); "
              f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"summary: {' '.join(args.paths)}: split / plain wall time, median of {len(ratios)} alternated round(s): "
          f"{statistics.median(ratios):.2f} (saves {100 * (1 - statistics.median(ratios)):.0f} %)")


if __name__ == "__main__":
    main()
