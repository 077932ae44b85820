"""How long `migrator demo` takes, end to end, as a person running it waits for it.

    python bench/demo.py [--runs 1]

Prints each run's wall time and exit code, then the median (the issue's goal: under 60 s on
a 2-core machine). Run it on an otherwise idle machine: the demo's sandbox and the migration
share the cores with anything else running.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    samples = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as directory:
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "migrator", "demo", "--dir", str(Path(directory) / "d")],
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - started
        samples.append(elapsed)
        print(f"run {n + 1}: {elapsed:.1f} s (exit {proc.returncode})")
        if proc.returncode != 0:
            print(proc.stderr.strip().splitlines()[-1:] or ["no output"])
    print(f"median: {statistics.median(samples):.1f} s over {len(samples)} run(s)")


if __name__ == "__main__":
    main()
