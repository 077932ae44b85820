"""Production stays writable during the copy; the cutover window catches up every write made while
the copy ran and while the gate waited; a config with `exclude` completes. Through the CLI against
the sandbox, rows checked with our own queries on the production name."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest

from tests.harness import Migration
from tests.unload_copy.conftest import Migration as _Migration  # noqa: F401  (fixture's type)

pytestmark = pytest.mark.slow


def _rows(m: Migration, cluster_id: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as our own query through ``cluster_id``'s name finds it, sorted."""
    conn = m.sb.connect(cluster_id, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"select * from {table}")
        return sorted(tuple(r) for r in cur.fetchall())
    finally:
        conn.close()


def _execute(m: Migration, cluster_id: str, *statements: str) -> None:
    conn = m.sb.connect(cluster_id, autocommit=True)
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
    finally:
        conn.close()


class _Writer(threading.Thread):
    """Inserts, updates and deletes on live.accounts until stopped, as production would."""

    def __init__(self, m: Migration, cluster_id: str) -> None:
        super().__init__(daemon=True)
        self.m, self.cluster_id = m, cluster_id
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        try:
            conn = self.m.sb.connect(self.cluster_id, autocommit=True)
            cur = conn.cursor()
            next_id = 1000
            while not self.stop.is_set():
                kind = self.writes % 3
                if kind == 0:
                    cur.execute("insert into live.accounts values (%s, %s)", (next_id, rng.randrange(1000)))
                    next_id += 1
                elif kind == 1:
                    cur.execute("update live.accounts set balance = balance + 1 where id = %s", (rng.randrange(200),))
                else:
                    cur.execute("delete from live.accounts where id = %s", (rng.randrange(200),))
                self.writes += 1
            conn.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def test_writes_during_copy_and_gate_arrive_after_cutover(migration: Migration) -> None:
    m = migration
    _execute(m, m.source, "create schema live", "create table live.accounts (id int, balance int)",
             "insert into live.accounts select g, g * 10 from generate_series(0, 199) g",
             "create table live.ledger (id int, note varchar(40))",
             "insert into live.ledger select g, 'n' || g from generate_series(0, 49) g")
    m.init()
    # Slow each COPY so the writer's statements land while tables are being copied.
    m.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": m.target}, seconds=0.3)
    writer = _Writer(m, m.source)
    writer.start()
    try:
        gate = m.cli("run", "--quiet")
    finally:
        writer.stop.set()
        writer.join()
        m.sb.faults.clear()
    assert writer.error is None, writer.error
    assert gate.returncode == 8 and "cutover" in gate.stderr, gate.stderr
    assert writer.writes > 20, "the writer barely ran during the copy"
    assert m.phase() == "awaiting_cutover"
    expected_downtime = json.loads(m.cli("status", "--json").stdout)["write_downtime"]
    assert expected_downtime.startswith("expected: production stays writable"), expected_downtime

    # While the gate waits: an insert, a delete, an update, a new table and a new column.
    _execute(m, m.source,
             "insert into live.ledger values (500, 'while the gate waited')",
             "delete from live.ledger where id = 3",
             "update live.ledger set note = 'changed' where id = 4",
             "create table live.fresh (k int, label varchar(10))",
             "insert into live.fresh values (1, 'a'), (2, 'b')",
             "alter table live.accounts add column region varchar(8) default 'eu'",
             "update live.accounts set region = 'us' where id < 10")
    expected = {t: _rows(m, m.source, t) for t in ("live.accounts", "live.ledger", "live.fresh")}
    seeded = m.table_digests(m.source)

    done = m.cli("cutover")
    assert done.returncode == 8 and "decommission" in done.stderr, done.stderr
    for table, rows in expected.items():
        assert _rows(m, m.source, table) == rows, table  # on the production name, now the new cluster
    assert m.table_digests(m.source) == seeded
    assert m.describe(m.source)["Encrypted"] is True
    downtime = json.loads(m.cli("status", "--json").stdout)["write_downtime"]
    assert "from the cutover approval" in downtime and "answering from the new cluster" in downtime, downtime
    report = json.loads(m.cli("report", "--format", "json").stdout)
    window = report["cutover_window"]
    assert window["write_downtime_seconds"] > 0 and window["copy_seconds_while_writable"] > 0, window
    assert report["migration"]["finished"] is not None
    answering = [e for e in report["encryption_observed"] if e["recorded_by"] == "cutover:production_name_answers"]
    assert answering and answering[0]["encrypted"] is True and answering[0]["cluster_id"] == m.source, answering
    with m.store() as store:
        migration_row = store.require_migration(m.name)
        passes = [e.detail for e in store.events(migration_row) if e.trigger == "catch_up_pass"]
        quiet = [e.detail for e in store.events(migration_row) if e.trigger == "catch_up_quiet"]
    assert passes and quiet, "the window recorded no catch-up pass"
    caught = {t for p in passes for k in ("changed_tables", "new_tables", "altered_tables") for t in p.get(k, [])}
    assert {"live.ledger", "live.fresh", "live.accounts"} <= caught, passes


def test_a_write_after_the_last_pass_sends_the_window_back_before_any_rename(migration: Migration) -> None:
    """The last check before the first rename sees a write the passes did not: no rename is sent,
    the window catches up again, and the write arrives."""
    m = migration
    table = "live.orders"
    _execute(m, m.source, "create schema live", f"create table {table} (id int)",
             f"insert into {table} select g from generate_series(1, 30) g")
    m.init()
    gate = m.cli("run", "--quiet")
    assert gate.returncode == 8, gate.stderr
    m.env["MIGRATOR_FAILPOINT"] = "before_first_rename"
    stopped = m.cli("cutover")
    assert stopped.returncode != 0 and m.phase() == "cutting_over", stopped.stderr
    del m.env["MIGRATOR_FAILPOINT"]
    _execute(m, m.source, f"delete from {table} where true")
    done = m.cli("run")
    assert done.returncode == 8, done.stderr
    assert _rows(m, m.source, table) == []
    renames = [c for c in m.sb.calls("ModifyCluster") if "NewClusterIdentifier" in c.get("params", {})
               and c.get("cluster_id") in (m.source, m.target)]
    assert len(renames) == 2, renames
    with m.store() as store:
        events = [e.trigger for e in store.events(store.require_migration(m.name))]
    assert "written_before_rename" in events


def test_a_config_with_exclude_completes_and_reports_the_table_as_not_migrated(migration: Migration) -> None:
    """The README's own example (`exclude = ["scratch.*"]`): the excluded table is never compared,
    before or after the swap, and stays behind on the old cluster."""
    m = migration
    _execute(m, m.source, "create schema scratch", "create table scratch.tmp (x int)",
             "insert into scratch.tmp values (1), (2)")
    text = m.config.read_text()
    assert "[tables]" in text
    m.config.write_text(text.replace("[tables]\n", '[tables]\nexclude = ["scratch.*"]\n', 1))
    m.init()
    done = m.cli("run", "--approve-cutover", "--quiet")
    assert done.returncode == 8 and "decommission" in done.stderr, done.stderr
    after = m.table_digests(m.source)
    assert "scratch.tmp" not in after
    old_name = next(c for c in m.sb.cluster_ids() if c.startswith(f"{m.source}-unencrypted-"))
    before = m.table_digests(old_name)
    assert before.pop("scratch.tmp")[0] == 2
    assert before == after
