"""What each small table costs a migration end to end, in the sandbox, at many tables.

    python bench/statements.py [--tables 10000] [--few 20] [--concurrency 4]

Seeds a source with --tables small tables (20 rows each, the seed's shapes), runs `migrator run`
to the cutover gate (every table unloaded, loaded and validated) against a PostgreSQL store, and
does the same with --few tables; the difference, per added table, is printed as in
tests/fleet/test_statements_sandbox.py (which runs it at 8 and 48 tables in CI): statements on
each cluster as stl_query logs them (commits included; one UNLOAD or COPY is one row, as on
Redshift), commits on each cluster, committed store transactions and store writes.
Also the wall time of the big run (seeding apart).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("MIGRATOR_AWS_POLL_CAP_SECONDS", "1")
os.environ.setdefault("MIGRATOR_TABLE_RETRY_BASE_SECONDS", "1")

from migrator.sandbox.client import SandboxClient  # noqa: E402
from migrator.sandbox.postgres import PostgresServer  # noqa: E402
from tests.fleet.test_statements_sandbox import migrate, per_table, report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if min(args.tables, args.few) < 1 or args.few >= args.tables or args.concurrency < 1:
        parser.error("--tables and --few must be at least 1 with --few below --tables; --concurrency at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sb = SandboxClient.start(root / "sb", tables=2, rows=10)
        pg = PostgresServer(root / "pg")
        pg.start()
        try:
            t0 = time.perf_counter()
            few = migrate(sb, pg, root / "few", args.few, concurrency=args.concurrency, timeout=3600)
            print(f"{args.few} tables: {time.perf_counter() - t0:.1f}s (seeding included)", flush=True)
            t0 = time.perf_counter()
            many = migrate(sb, pg, root / "many", args.tables, concurrency=args.concurrency, timeout=6 * 3600)
            print(f"{args.tables} tables: {time.perf_counter() - t0:.1f}s in all, "
                  f"{many['run_seconds']:.1f}s the run (init to the cutover gate), "
                  f"{many['run_seconds'] / args.tables * 1000:.1f} ms per table", flush=True)
            report(few, many, per_table(few, many))
        finally:
            pg.destroy()
            sb.stop()


if __name__ == "__main__":
    main()
