"""Checkpoint-store figures: cost per table transition, and `migrator status` on a big store.

    python bench/store.py [--tables 10000] [--status-tables 100000] [--backend sqlite|postgresql|both]

Prints median and p99 milliseconds per transition (each one a compare-and-set
transaction plus its event row, driven through the real table machine), and the
time `status` takes to query and render a store of --status-tables tables, beside
the whole `migrator status` process time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from migrator import commands
from migrator.engine.flows import TableFlow
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, TableSpec, db
from migrator.strategies import build

HAPPY_PATH = [
    ("start_unload", {}),
    ("complete_unload", {"fields": {"manifest_url": "s3://bucket/m"}}),
    ("start_load", {}),
    ("complete_load", {"fields": {"rows_loaded": 10}}),
    ("start_validation", {}),
    ("complete_validation", {"fields": {"source_checksum": "x", "target_checksum": "x"}}),
]


def transitions_bench(url: str, tables: int) -> dict[str, float]:
    db.upgrade(url)
    strategy = build("unload-copy")
    registry, table_def = strategy.registry, strategy.table_definition
    costs: list[float] = []
    with Store.open(url) as store:
        m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(m, [TableSpec("public", f"t{i:06d}", i % 97, i) for i in range(tables)], "pending")
        build: list[float] = []
        for task in store.list_tables(m):
            t0 = time.perf_counter()
            flow = TableFlow(table_def, registry, store, task)
            build.append(time.perf_counter() - t0)
            for trigger, facts in HAPPY_PATH:
                t0 = time.perf_counter()
                flow.fire(trigger, **facts)
                costs.append(time.perf_counter() - t0)
    costs.sort()
    return {
        "transitions": len(costs),
        "median_ms": statistics.median(costs) * 1000,
        "p99_ms": costs[int(len(costs) * 0.99) - 1] * 1000,
        "machine_build_median_ms": statistics.median(build) * 1000,
    }


def status_bench(tmp: Path, tables: int) -> dict[str, float]:
    url = f"sqlite:///{tmp / '.migrator' / 'state.db'}"
    db.upgrade(url)
    with Store.open(url) as store:
        m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(m, [TableSpec("s", f"t{i:06d}", i % 97, i) for i in range(tables)], "pending")
    config = tmp / "migrator.toml"
    config.write_text(
        '[migration]\nname = "bench"\nstrategy = "unload-copy"\nregion = "us-east-1"\n'
        '[source]\ncluster_id = "a"\npassword_env = "P"\n[target]\ncluster_id = "b"\n'
        '[staging]\ns3_uri = "s3://bucket/x/"\niam_role_arn = "arn:aws:iam::123456789012:role/R"\n'
        'kms_key_id = "alias/k"\n')
    console = Console(file=open("/dev/null", "w"))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        console.print(commands.status(config).render())
        samples.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "migrator", "status", "-c", str(config)], check=True,
                   capture_output=True)
    process = time.perf_counter() - t0
    return {"tables": tables, "query_and_render_ms": statistics.median(samples) * 1000,
            "whole_process_ms": process * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--status-tables", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.backend in ("sqlite", "both"):
            result = transitions_bench(f"sqlite:///{tmp / 'bench.db'}", args.tables)
            print(f"sqlite     {args.tables} tables: {result}")
        if args.backend in ("postgresql", "both"):
            with PostgresServer(tmp / "pg") as pg:
                pg.create_database("bench")
                result = transitions_bench(pg.url("bench"), args.tables)
                print(f"postgresql {args.tables} tables: {result}")
        (tmp / "status").mkdir()
        print(f"status: {status_bench(tmp / 'status', args.status_tables)}")


if __name__ == "__main__":
    main()
