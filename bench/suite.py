"""How long the test suite takes: total wall time and the ten slowest tests.

    python bench/suite.py [PYTEST ARGS...]        run `python -m pytest` (with a junit xml) and report
    python bench/suite.py --junit FILE.xml        report on a finished run's junit xml
    python bench/suite.py --log FILE              report on a finished run's output (--durations lines
                                                   and pytest's "N passed in X s" summary)

A test's time is setup + call + teardown (the junit xml's per-test total; in a log, the
--durations lines of one test added up). Run from the repository root.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TOP = 10
_DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S.*)$")
_SUMMARY = re.compile(r"in ([\d.]+)s")


def from_junit(path: Path) -> tuple[float | None, dict[str, float], int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(float(s.get("time", 0)) for s in suites) or None
    times: dict[str, float] = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        times[name] = times.get(name, 0.0) + float(case.get("time", 0))
    return total, times, len(times)


def from_log(path: Path) -> tuple[float | None, dict[str, float], int]:
    times: dict[str, float] = defaultdict(float)
    total = None
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        found = _DURATION.match(line)
        if found:
            times[found.group(3)] += float(found.group(1))
        elif " passed" in line or " failed" in line:
            summary = _SUMMARY.search(line)
            if summary:
                total = float(summary.group(1))
                count = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed|error|skipped|xfailed|xpassed)", line))
    return total, dict(times), count


def report(total: float | None, times: dict[str, float], count: int, wall: float | None = None) -> None:
    if wall is not None:
        print(f"wall time: {wall:.1f} s ({wall / 60:.1f} min)")
    if total is not None:
        print(f"pytest's total: {total:.1f} s ({total / 60:.1f} min)")
    if count:
        print(f"tests: {count}")
    print(f"slowest {TOP} (setup + call + teardown):")
    for name, seconds in sorted(times.items(), key=lambda kv: -kv[1])[:TOP]:
        print(f"  {seconds:7.2f} s  {name}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--junit", type=Path, help="a finished run's junit xml")
    parser.add_argument("--log", type=Path, help="a finished run's output")
    args, pytest_args = parser.parse_known_args(argv)
    if args.junit:
        report(*from_junit(args.junit))
        return 0
    if args.log:
        report(*from_log(args.log))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        started = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", "pytest", f"--junitxml={xml}", *pytest_args])
        wall = time.monotonic() - started
        if xml.exists():
            report(*from_junit(xml), wall=wall)
        else:
            print(f"wall time: {wall:.1f} s; no junit xml written (pytest exit {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
