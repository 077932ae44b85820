"""Start-up figures: what a person waits for before the CLI answers.

    python bench/startup.py [--runs 7] [--tables 10000]

Prints the median wall time of whole processes: the bare interpreter, importing SQLAlchemy
(the floor for any command that reads the store), `migrator --help`, and `migrator status`
on a store of --tables tables.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrator.store import Store, TableSpec, db

CONFIG = ('[migration]\nname = "bench"\nstrategy = "unload-copy"\nregion = "us-east-1"\n'
          '[source]\ncluster_id = "a"\npassword_env = "P"\n[target]\ncluster_id = "b"\n'
          '[staging]\ns3_uri = "s3://bucket/x/"\niam_role_arn = "arn:aws:iam::123456789012:role/R"\n'
          'kms_key_id = "alias/k"\n')


def median_ms(argv: list[str], runs: int, cwd: Path) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tables", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / '.migrator' / 'state.db'}"
        db.upgrade(url)
        with Store.open(url) as store:
            m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
            store.add_tables(m, [TableSpec("s", f"t{i:06d}", i % 97, i) for i in range(args.tables)], "pending")
        (tmp / "migrator.toml").write_text(CONFIG)
        py = sys.executable
        figures = {
            "python -c pass": median_ms([py, "-c", "pass"], args.runs, tmp),
            "import sqlalchemy": median_ms([py, "-c", "import sqlalchemy"], args.runs, tmp),
            "migrator --help": median_ms([py, "-m", "migrator", "--help"], args.runs, tmp),
            f"migrator status ({args.tables} tables)": median_ms([py, "-m", "migrator", "status"], args.runs, tmp),
        }
    for what, ms in figures.items():
        print(f"{what:<36} {ms:8.0f} ms")


if __name__ == "__main__":
    main()
