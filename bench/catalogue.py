"""Cost per table as the catalogue grows: 1k, 10k and 100k tables on a synthetic store.

    python bench/catalogue.py [--sizes 1000,10000,100000] [--backend sqlite|postgresql|both]
                              [--walk 200] [--picks 200]

The sandbox cannot hold 100k tables, so the store is filled directly (half the tables validated,
four events each, as mid-way through a copy) and the data plane is replaced by steps that only
return their findings: what is measured is the store and the engine, per table:

- pick: the next table, now (`Store.pick_table`: one index probe, SKIP LOCKED on PostgreSQL),
  beside what the old in-memory queue cost per pick (a sort of every table not done);
- status: `commands.status` (queries and result, in process) on that store;
- memory per worker: what a table worker holds for the pass (tracemalloc peak while it walks
  --walk tables) plus the source inventory's share (shared by the process's workers now; one
  copy per worker before), the inventory's columns laid out as now (slots, interned texts) and
  as before;
- store transactions per table: commits counted on the store's engine while --walk tables are
  walked start to end by `walk_all` (3: a pick writes the previous table's end and takes the
  next one's first move; each later step's end is written with the next one's start). Warehouse
  statements per table come from the sandbox's stl_query: bench/statements.py end to end at
  10,000 tables, tests/fleet/test_statements_sandbox.py at 48.

Each figure should stay within 1.2x from 1k to 100k tables (per table).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text, update

from migrator import commands
from migrator.config import load_config
from migrator.engine import tables as table_driver
from migrator.engine.context import PhaseContext, RunOptions
from migrator.engine.flows import MigrationFlow
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, TableSpec, db
from migrator.store.models import Event, TableTask
from migrator.strategies import build
from migrator.warehouse import inventory as inv

CONFIG = ('[migration]\nname = "bench"\nstrategy = "unload-copy"\nregion = "us-east-1"\nstore = "{store}"\n'
          '[source]\ncluster_id = "a"\npassword_env = "P"\n[target]\ncluster_id = "b"\n'
          '[staging]\ns3_uri = "s3://bucket/x/"\niam_role_arn = "arn:aws:iam::123456789012:role/R"\n'
          'kms_key_id = "alias/k"\n[tables]\nconcurrency = 4\n')
COLUMNS_PER_TABLE = 8
TYPES = ["integer", "bigint", "character varying(256)", "timestamp without time zone", "numeric(18,2)",
         "boolean", "date", "character(1)"]


def fill(url: str, n: int) -> None:
    """n tables, the even ones validated with four events each, the odd ones pending."""
    db.upgrade(url)
    with Store.open(url) as store:
        m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(m, [TableSpec("s", f"t{i:06d}", i % 997, 1000 + i) for i in range(n)], "pending")
        now = datetime.now(UTC)
        with store.engine.begin() as conn:
            conn.execute(update(TableTask).where(TableTask.migration_id == m.id, TableTask.id % 2 == 0)
                         .values(state="validated", rows_loaded=TableTask.source_rows, bytes_unloaded=4096))
            ids = [r[0] for r in conn.execute(text("select id, table_name from table_task where id % 2 = 0"))]
            rows = []
            for tid in ids:
                for trig, frm, to in (("start_unload", "pending", "unloading"), ("complete_unload", "unloading",
                                      "unloaded"), ("complete_load", "loading", "loaded"),
                                      ("complete_validation", "validating", "validated")):
                    rows.append({"migration_id": m.id, "at": now, "subject": f"table:s.t{tid:06d}",
                                 "from_state": frm, "to_state": to, "trigger": trig, "detail": {}, "host": "h",
                                 "pid": 1})
                if len(rows) >= 20_000:
                    conn.execute(insert(Event), rows)
                    rows = []
            if rows:
                conn.execute(insert(Event), rows)


def pick_figures(url: str, picks: int) -> tuple[float, float]:
    """(ms per pick now, ms per pick of the old in-memory queue)."""
    with Store.open(url) as store:
        m = store.require_migration("bench")
        samples = []
        for _ in range(picks):
            t0 = time.perf_counter()
            task = store.pick_table(m, ("loaded", "unloaded", "pending"), ("failed",), 3, 600)
            samples.append(time.perf_counter() - t0)
            assert task is not None
        # The old walk_all: every pick sorted the whole queue of tables not done (O(n log n) a pick).
        pending = len(store.list_tables(m, states=["pending"]))
    queue = [_OldQueued(0.0, rank, None) for rank in range(pending)]
    old = []
    for _ in range(min(picks, 20)):
        t0 = time.perf_counter()
        now = time.monotonic()
        ready = sorted(q for q in queue if q.ready_at <= now)
        queue.remove(ready[0])
        old.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000, statistics.median(old) * 1000


@dataclass(order=True)
class _OldQueued:  # the old walk_all's queue item (engine/tables.py before the store picks)
    ready_at: float
    rank: int
    task: Any = field(compare=False)


def status_ms(config: Path) -> float:
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        commands.status(config)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


@dataclass
class _Steps:
    def unload(self, ctx: Any) -> table_driver.StepResult:
        return table_driver.StepResult({"manifest_url": "s3://b/m"})

    def load(self, ctx: Any) -> table_driver.StepResult:
        return table_driver.StepResult({"rows_loaded": ctx.task.source_rows})

    def validate(self, ctx: Any) -> table_driver.StepResult:
        return table_driver.StepResult({"source_checksum": "c", "target_checksum": "c"})


def walk_figures(url: str, config: Path, walk: int) -> tuple[float, float]:
    """(store transactions per table, KiB a worker process holds per pass) walking ``walk`` tables."""
    loaded = load_config(config)
    strategy = build("unload-copy")
    with Store.open(url) as store:
        m = store.require_migration("bench")
        with store.engine.begin() as conn:  # only ``walk`` tables left to do; the rest done
            conn.execute(update(TableTask).where(TableTask.migration_id == m.id, TableTask.state != "validated",
                                                 TableTask.id > 2 * walk).values(state="validated", owner=None))
            conn.execute(update(TableTask).where(TableTask.migration_id == m.id, TableTask.state != "validated")
                         .values(owner=None, lease_expires_at=None))
        left = len(store.list_tables(m, states=["pending"]))
        commits = [0]
        event.listen(store.engine, "commit", lambda conn: commits.__setitem__(0, commits[0] + 1))
        flow = MigrationFlow(strategy.definition, strategy.registry, store, m, loaded.settings)
        ctx = PhaseContext(loaded, store, flow, strategy.table_definition, strategy.registry, RunOptions(),
                           should_stop=lambda: False)
        s = _Steps()
        tracemalloc.start()
        outcomes = table_driver.walk_all(ctx, {"unload": s.unload, "load": s.load, "validate": s.validate},
                                         lambda: nullcontext(None), 4)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(outcomes) == left and all(o.done for o in outcomes), outcomes[:3]
    return commits[0] / left, peak / 1024


@dataclass
class _OldColumn:  # the inventory's column before: a plain dataclass, its texts copied per column
    name: str
    type: str
    encoding: str
    not_null: bool
    distkey: bool
    sortkey: int
    default: str | None = None
    identity: tuple[int, int] | None = None
    identity_by_default: bool = False


@dataclass
class _OldTable:
    schema: str
    name: str
    table_id: int
    size_mb: int
    rows: int
    diststyle: str
    distkey: str | None
    sortkey_kind: str | None
    sortkeys: list[str]
    encode_auto: bool | None
    backup: bool | None
    columns: list[Any] = field(default_factory=list)
    scans: int = 0
    last_write: datetime | None = None
    unused: bool = False


def inventory_kib(n: int, old: bool) -> float:
    """KiB of an inventory of n tables of COLUMNS_PER_TABLE columns, built as the reader builds it."""
    tracemalloc.start()
    tables = []
    for i in range(n):
        if old:
            cols = [_OldColumn(f"c{j}", "".join(TYPES[j]), "".join("az64"), False, False, 0)
                    for j in range(COLUMNS_PER_TABLE)]
            tables.append(_OldTable("s", f"t{i:06d}", i, 1, 1, "AUTO", None, None, [], None, None, cols))
        else:
            cols = [inv._column((f"c{j}", "".join(TYPES[j]), "".join("az64"), False, False, 0), None)
                    for j in range(COLUMNS_PER_TABLE)]
            tables.append(inv.TableInfo("s", f"t{i:06d}", i, 1, 1, "AUTO", None, None, [], None, None, cols))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del tables
    return current / 1024


def run_size(url: str, tmp: Path, n: int, args: argparse.Namespace) -> dict[str, float]:
    fill(url, n)
    config = tmp / f"migrator-{n}.toml"
    config.write_text(CONFIG.replace("{store}", url))
    pick_now, pick_before = pick_figures(url, args.picks)
    status = status_ms(config)
    tx_per_table, worker_kib = walk_figures(url, config, args.walk)
    inv_now = inventory_kib(n, old=False)
    inv_before = inventory_kib(n, old=True)
    return {"tables": n, "pick_ms": pick_now, "pick_ms_before": pick_before, "status_ms": status,
            "worker_pass_kib": worker_kib, "inventory_mib_per_process": inv_now / 1024,
            "inventory_mib_per_worker_before": inv_before / 1024, "store_tx_per_table": tx_per_table}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--walk", type=int, default=200, help="tables walked to count transactions and memory")
    parser.add_argument("--picks", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    header = (f"{'backend':<10} {'tables':>7} {'pick ms':>8} {'(before)':>9} {'status ms':>9} "
              f"{'worker KiB':>10} {'inv MiB/proc':>12} {'(before, per worker)':>20} {'store tx/table':>14}")
    print(header)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for backend in backends:
            server = PostgresServer(tmp / "pg") if backend == "postgresql" else None
            if server is not None:
                server.start()
            try:
                for n in sizes:
                    if server is not None:
                        server.create_database(f"cat{n}")
                        url = server.url(f"cat{n}")
                    else:
                        url = f"sqlite:///{tmp / f'cat{n}.db'}"
                    r = run_size(url, tmp, n, args)
                    print(f"{backend:<10} {n:>7} {r['pick_ms']:>8.2f} {r['pick_ms_before']:>9.2f} "
                          f"{r['status_ms']:>9.0f} {r['worker_pass_kib']:>10.0f} "
                          f"{r['inventory_mib_per_process']:>12.1f} {r['inventory_mib_per_worker_before']:>20.1f} "
                          f"{r['store_tx_per_table']:>14.2f}", flush=True)
            finally:
                if server is not None:
                    server.destroy()
    print("warehouse statements, commits and store transactions per table end to end in the sandbox: "
          "bench/statements.py --tables 10000 (tests/fleet/test_statements_sandbox.py at 8 and 48 tables)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
