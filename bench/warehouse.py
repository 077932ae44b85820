"""Warehouse data-plane figures through the sandbox: rows/s and MB/s per table size class, and
the tool's own overhead per table (wall time minus time inside UNLOAD/COPY/validation).

    python bench/warehouse.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from migrator.aws import staging
from migrator.sandbox.client import SandboxClient
from migrator.warehouse import checksum, pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    args = ap.parse_args()
    # The sandbox runs in its own process, as it would be a separate cluster: the tool's overhead
    # is then measured without the sandbox's work competing for this interpreter.
    with SandboxClient.start(Path(tempfile.mkdtemp()) / "sb", tables=6, rows=args.rows) as sb:
        sb.create_cluster("bench-tgt", encrypted=True, kms_key_id=sb.info.kms_key_arn)
        src = Session(sb.connect("analytics", autocommit=True))
        tgt = Session(sb.connect("bench-tgt", autocommit=True))
        tx = Session(sb.connect("bench-tgt", autocommit=False))
        inv = [t for t in read_inventory(src) if t.name.isidentifier()]  # sandbox COPY bug: see report
        replay.replay_objects(src, tgt, tables=inv)
        pipeline.ensure_bookkeeping(tgt)
        print(f"{'table':28} {'rows':>7} {'MB':>6} {'fmt':8} {'rows/s':>9} {'MB/s':>7} {'overhead ms':>11}")
        for t in inv:
            for s in (src, tgt, tx):
                s.timings.clear()
            started = time.perf_counter()
            u = pipeline.unload_table(src, t.schema, t.name, t.columns, staging_uri=f"s3://{sb.info.bucket}/b/",
                                      migration="bench", attempt=1, iam_role_arn=sb.info.iam_role_arn,
                                      kms_key_id=sb.info.kms_alias)
            v0 = time.perf_counter()
            report = staging.verify_staging(sb.client("s3"), sb.client("kms"), u.manifest_url,
                                            kms_key_id=sb.info.kms_alias, expected_rows=t.rows)
            verify = time.perf_counter() - v0
            pipeline.load_exactly_once(tx, t.schema, t.name, manifest_url=u.manifest_url, fmt=u.format,
                                       iam_role_arn=sb.info.iam_role_arn, migration="bench", attempt=1,
                                       explicit_ids=bool(t.identity_columns), expected_rows=t.rows)
            checksum.require_equal(checksum.compare_table(src, tgt, t.schema, t.name, t.columns))
            staging.cleanup_prefix(sb.client("s3"), u.prefix)
            wall = time.perf_counter() - started
            inside = sum(s.timings.get(k, 0.0) for s in (src, tgt, tx) for k in ("unload", "copy", "validate"))
            mb = report.bytes / 1e6
            print(f"{t.key[:28]:28} {t.rows:>7} {mb:>6.2f} {u.format.name:8} {t.rows / wall:>9.0f} "
                  f"{mb / wall:>7.2f} {1000 * (wall - inside - verify):>11.1f}")


if __name__ == "__main__":
    main()
