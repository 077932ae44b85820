"""A fault run: one small unload-copy migration per fault, each on its own source cluster in
one sandbox, run to the cutover gate; which faults the tool absorbed within the run and
which needed an operator.

    python bench/faults.py [--tables 4] [--rows 500]

Table retries back off from 1 s here (MIGRATOR_TABLE_RETRY_BASE_SECONDS; 30 s by default).
Prints one line per fault: the outcome (absorbed: the run reached the cutover gate; operator:
it stopped with the exit code shown), the in-run retries and refused-then-retried AWS answers
the history records, and the wall time. Faults are injected the way the sandbox's tests do
(migrator/sandbox/faults.py), with the texts Redshift, S3 and KMS use.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient
from migrator.store import Store
from migrator.warehouse.sql import staging_prefix

from migration import write_config  # bench/migration.py (this script's folder is on sys.path)


SLOWDOWN = ("S3ServiceException:Please reduce your request rate.,Status 503,Error SlowDown,"
            "Rid 5C3F9B2D1E0A4B67,ExtRid abc=,CanRetry 1")
LOAD_REJECTED = "Load into table '{table}' failed.  Check 'stl_load_errors' system table for details."
SERIALIZABLE = ("1023 DETAIL: Serializable isolation violation on table - 104562, transactions forming the cycle "
                "are: 7401, 7402 (pid:13306)")


@dataclass
class Scenario:
    label: str
    faults: list[dict[str, Any]] = field(default_factory=list)


def scenarios(victim: str) -> list[Scenario]:
    """``victim`` is the qualified name of one seeded table (the same in every source)."""
    return [
        Scenario("none (baseline)"),
        Scenario("S3 SlowDown inside the probe's first two UNLOADs (XX000)", [
            {"kind": "sql_error", "times": 2, "match": {"statement": "unload"},
             "params": {"sqlstate": "XX000", "message": SLOWDOWN}}]),
        Scenario("S3 SlowDown inside a table's UNLOAD (XX000), first attempt", [
            {"kind": "sql_error", "times": 1, "match": {"statement": "unload", "attempt": 1},
             "params": {"sqlstate": "XX000", "message": SLOWDOWN}}]),
        Scenario("S3 503 SlowDown on the staging check (HeadObject), 3 times", [
            {"kind": "s3_slowdown", "times": 3, "match": {"operation": "HeadObject"}}]),
        Scenario("S3 500 InternalError listing staged files, twice", [
            {"kind": "s3_error", "times": 2, "match": {"operation": "ListObjectsV2"}}]),
        Scenario("connection dropped in the middle of a COPY", [
            {"kind": "drop_connection", "times": 1, "match": {"statement": "copy"}}]),
        Scenario("connection dropped while COMMIT was in flight", [
            {"kind": "drop_connection", "times": 1, "match": {"statement": "commit"}}]),
        Scenario("serializable isolation violation (error 1023) on COPY", [
            {"kind": "sql_error", "times": 1, "match": {"statement": "copy", "table": victim},
             "params": {"sqlstate": "XX000", "message": SERIALIZABLE}}]),
        Scenario("CreateCluster took effect, its answer lost (botocore retries)", [
            {"kind": "reply_lost", "times": 1, "match": {"operation": "CreateCluster"}}]),
        Scenario("COPY rejects a row (stl_load_errors)", [
            {"kind": "sql_error", "times": -1, "match": {"statement": "copy", "table": victim},
             "params": {"sqlstate": "XX000", "message": LOAD_REJECTED.format(table=victim.split(".")[-1])}}]),
        Scenario("KMS denies the staging key (DescribeKey)", [
            {"kind": "kms_access_denied", "times": -1, "match": {"operation": "DescribeKey"}}]),
        Scenario("S3 SlowDown inside a table's UNLOAD on every attempt", [
            {"kind": "sql_error", "times": -1, "match": {"statement": "unload", "attempt": n},
             "params": {"sqlstate": "XX000", "message": SLOWDOWN}} for n in range(1, 7)]),
    ]


def run_one(sb: SandboxClient, root: Path, number: int, scenario: Scenario, victim: str, tables: int,
            rows: int) -> str:
    source = f"fault{number:02d}"
    sb.create_seeded_cluster(source, tables=tables, rows=rows)
    directory = root / source
    config = write_config(sb, directory, source, f"{source}-enc", workers=4, source=source)
    info = sb.info
    # A table's in-run retries wait 30 s, 60 s, ... by default; 1 s keeps the bench short.
    env = {**os.environ, **sb.env(), **sb.operator_env(config, name="bench-faults"),  # limited to its policy
           "MIGRATOR_SANDBOX_PASSWORD": sb.cluster_info(source).password, "MIGRATOR_FREEZE_QUIET_SECONDS": "0",
           "MIGRATOR_TABLE_RETRY_BASE_SECONDS": "1"}
    subprocess.run([sys.executable, "-m", "migrator", "init", str(config)], env=env, cwd=directory, check=True,
                   capture_output=True)
    sb.faults.clear()
    fired_before = {spec["kind"]: len(sb.faults.fired(spec["kind"])) for spec in scenario.faults}
    for spec in scenario.faults:
        match = dict(spec["match"])
        if "attempt" in match:  # a table's own UNLOAD: its staging prefix for that attempt
            schema, table = victim.split(".", 1)
            match["table"] = staging_prefix(f"s3://{info.bucket}/{source}/", source, schema, table, match.pop("attempt"))
        if spec["kind"] in ("sql_error", "drop_connection"):
            match.setdefault("cluster", f"{source}-enc" if match.get("statement") in ("copy", "commit") else source)
        elif spec["kind"] == "reply_lost":
            match.setdefault("cluster_id", f"{source}-enc")
        sb.faults.add(spec["kind"], times=spec["times"], match=match, **spec.get("params", {}))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "migrator", "run", "-c", str(config), "--assume-frozen"], env=env,
                          cwd=directory, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    fired = sum(len(sb.faults.fired(kind)) - before for kind, before in fired_before.items())
    sb.faults.clear()
    with Store.open(f"sqlite:///{directory / '.migrator' / 'state.db'}", read_only=True) as store:
        migration = store.require_migration(source)
        events = store.events(migration)
        phase = migration.phase
    retries = sum(1 for e in events if e.trigger == "retry_scheduled"
                  or (e.trigger == "warning" and "retry" in str((e.detail or {}).get("message", ""))))
    recovered = sum(1 for e in events if e.trigger in ("load_reconciled", "answer_lost", "requeue"))
    if proc.returncode == 8 and phase == "awaiting_cutover":
        outcome = "absorbed"
    else:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        outcome = f"operator (exit {proc.returncode}: {last[:110]})"
    return (f"{scenario.label:<62} fired {fired:>2}  retries {retries:>2}  recovered {recovered:>2}  {seconds:5.1f}s  "
            f"{outcome}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=4)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        root = Path(tmp)
        sb = SandboxClient.start(root / "sb", tables=0, rows=10, durations={"create_seconds": 0.3,
                                                                            "rename_seconds": 0.2,
                                                                            "reboot_seconds": 0.2})
        try:
            victim = _victim(sb, args.tables, args.rows)
            for number, scenario in enumerate(scenarios(victim), start=1):
                print(run_one(sb, root, number, scenario, victim, args.tables, args.rows), flush=True)
        finally:
            sb.stop()


def _victim(sb: SandboxClient, tables: int, rows: int) -> str:
    """The largest seeded table's name (every source is seeded alike)."""
    sb.create_seeded_cluster("faultprobe", tables=tables, rows=rows)
    conn = sb.connect("faultprobe")
    try:
        cur = conn.cursor()
        cur.execute('select "schema", "table" from svv_table_info order by tbl_rows desc limit 1')
        schema, table = cur.fetchone()
        return f"{schema}.{table}"
    finally:
        conn.close()


if __name__ == "__main__":
    main()
