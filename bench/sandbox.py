"""Sandbox figures: start-up time, and UNLOAD/COPY throughput for a 10-column table.

    python bench/sandbox.py [--rows 1000000]

Prints seconds, rows/s and MB/s (staged bytes) for UNLOAD and COPY in Parquet and CSV.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psycopg

from migrator.sandbox.client import SandboxClient

TABLE_DDL = ("create table bench_wide (id bigint, a int, b smallint, c numeric(18,4), d double precision, "
             "e boolean, f varchar(64), g date, h timestamp, i char(8))")
FILL = ("insert into bench_wide select g, g % 1000, (g % 30000)::smallint, g * 1.25, g / 7.0, g % 2 = 0, "
        "'row-' || g, date '2020-01-01' + (g % 1000), timestamp '2020-01-01' + g * interval '1 second', "
        "lpad((g % 9999)::text, 8, '0') from generate_series(1, {rows}) g")
FORMATS = {
    "parquet": ("format parquet", "format parquet"),
    "csv": ("format csv null as '\\\\N'", "format csv null as '\\\\N'"),
}


def staged_bytes(sb: SandboxClient, prefix: str) -> int:
    s3 = sb.client("s3")
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sb.info.bucket, Prefix=prefix):
        total += sum(obj["Size"] for obj in page.get("Contents", []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sb = SandboxClient.start(Path(tmp) / "sb", tables=6, rows=1000)
        print(f"sandbox start-up (PostgreSQL, proxy, moto, seeded source): {time.perf_counter() - t0:.2f}s")
        try:
            source = sb.info.source_cluster_id
            sb.create_cluster("bench-target")
            with psycopg.connect(sb.admin_dsn(source), autocommit=True) as pg:
                t0 = time.perf_counter()
                pg.execute(TABLE_DDL)
                pg.execute(FILL.format(rows=int(args.rows)))  # type: ignore[arg-type]
                print(f"filled {args.rows:,} rows directly in PostgreSQL: {time.perf_counter() - t0:.2f}s")
            src = sb.connect(source, autocommit=True)
            dst = sb.connect("bench-target", autocommit=True)
            dst.cursor().execute(TABLE_DDL)
            role = sb.info.iam_role_arn
            for name, (unload_opts, copy_opts) in FORMATS.items():
                prefix = f"bench/{name}/"
                t0 = time.perf_counter()
                src.cursor().execute(
                    f"unload ('select * from bench_wide') to 's3://{sb.info.bucket}/{prefix}' iam_role '{role}' "
                    f"{unload_opts} manifest verbose encrypted kms_key_id '{sb.info.kms_key_id}' cleanpath")
                unload_s = time.perf_counter() - t0
                size_mb = staged_bytes(sb, prefix) / 1e6
                dst.cursor().execute("delete from bench_wide")
                t0 = time.perf_counter()
                dst.cursor().execute(f"copy bench_wide from 's3://{sb.info.bucket}/{prefix}manifest' "
                                     f"iam_role '{role}' {copy_opts} manifest")
                copy_s = time.perf_counter() - t0
                print(f"{name:8s} UNLOAD {unload_s:6.2f}s {args.rows / unload_s:10,.0f} rows/s "
                      f"{size_mb / unload_s:6.1f} MB/s | COPY {copy_s:6.2f}s {args.rows / copy_s:10,.0f} rows/s "
                      f"{size_mb / copy_s:6.1f} MB/s | staged {size_mb:.1f} MB")
            src.close()
            dst.close()
        finally:
            sb.stop()


if __name__ == "__main__":
    main()
