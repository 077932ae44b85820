"""`migrator status --all`: every migration of a store, from -c or --store, without the password."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import text

from migrator.procinfo import ProcessIdentity
from migrator.sandbox.postgres import PostgresServer
from migrator.store import PartSpec, Store, TableSpec, db
from tests.conftest import CONFIG_TOML
from tests.harness import one_line_error, run_migrator


def _fill(url: str) -> None:
    db.upgrade(url)
    with Store.open(url) as store:
        a = store.create_migration("alpha", "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(a, [TableSpec("s", f"t{i}", size_mb=i, source_rows=100) for i in range(4)], "pending")
        b = store.create_migration("beta", "unload-copy", "0" * 64, {}, "awaiting_cutover")
        store.add_tables(b, [TableSpec("s", "only", source_rows=7)], "pending")
        with store.engine.begin() as conn:
            conn.execute(text("update table_task set state = 'validated' where migration_id = :b"), {"b": b.id})
            conn.execute(text("update table_task set state = 'validated' where table_name in ('t0', 't1')"))
            conn.execute(text("update table_task set state = 'failed', attempt = 3 where table_name = 't2'"))
        # Two of alpha's tables split into parts (4 + 3): 3 parts done of 7, over both.
        for name, total in (("t3", 4), ("t1", 3)):
            task = store.find_table(a, "s", name)
            assert task is not None
            store.add_parts(task, [PartSpec(i, total, "id", None, None, 10, 1) for i in range(total)], "pending")
        conn_done = "update table_part set state = 'validated' where part_no = 0 or (part_no = 1 and parts_total = 4)"
        with store.engine.begin() as conn:
            conn.execute(text(conn_done))
    # A worker of this process (alive) on alpha, and one of a pid that no longer runs.
    with Store(db.create_store_engine(url)) as live:
        live.register_worker(live.require_migration("alpha"), "worker", 60)
    with Store(db.create_store_engine(url), identity=ProcessIdentity(live.identity.host, 2**22 + 7, None)) as dead:
        dead.register_worker(dead.require_migration("alpha"), "worker", 60)


def test_status_all_lists_every_migration_of_a_postgresql_store_given_by_url(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    pg_server.create_database("fleet_status_all")
    url = pg_server.url("fleet_status_all")
    _fill(url)
    proc = run_migrator(["status", "--all", "--json"], cwd=tmp_path, env={"MIGRATOR_STORE": url}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert pg_server.password not in proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert "***" in out["store"]
    rows = {r["migration"]: r for r in out["migrations"]}
    alpha, beta = rows["alpha"], rows["beta"]
    assert (alpha["phase"], alpha["tables_done"], alpha["tables_total"]) == ("copying", 2, 4)
    assert (alpha["rows_done"], alpha["rows_total"], alpha["needs_operator"]) == (200, 400, 1)
    assert (alpha["parts_done"], alpha["parts_total"]) == (3, 7)  # summed over its parted tables
    assert (beta["parts_done"], beta["parts_total"]) == (0, 0)
    assert [w["role"] for w in alpha["workers_alive"]] == ["worker"]  # the dead pid's row is not alive
    assert alpha["last_heartbeat_at"] is not None and alpha["gate_waiting"] is None
    assert (beta["tables_done"], beta["tables_total"], beta["gate_waiting"]) == (1, 1, "cutover")
    assert beta["workers_alive"] == []
    people = run_migrator(["status", "--all"], cwd=tmp_path, env={"MIGRATOR_STORE": url, "COLUMNS": "300"},
                          timeout=60)
    assert people.returncode == 0 and "alpha" in people.stdout and "beta" in people.stdout
    header = next(line for line in people.stdout.splitlines() if "migration" in line and "parts" in line)
    alpha_line = next(line for line in people.stdout.splitlines() if "alpha" in line)
    columns, cells = ([c.strip() for c in re.split("[│┃]", line)[1:-1]] for line in (header, alpha_line))
    assert cells[columns.index("tables")] == "2/4" and cells[columns.index("parts")] == "3/7"
    assert pg_server.password not in people.stdout


def test_status_all_reads_the_store_of_the_config(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _fill(url)
    (tmp_path / "migrator.toml").write_text(CONFIG_TOML.replace("{store}", url))
    proc = run_migrator(["status", "--all", "--json", "-c", str(tmp_path / "migrator.toml")], cwd=tmp_path,
                        env={}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r["migration"] for r in json.loads(proc.stdout)["migrations"]] == ["alpha", "beta"]


def test_store_without_all_is_refused_with_one_line(tmp_path: Path) -> None:
    proc = run_migrator(["status", "--store", "sqlite:///x.db"], cwd=tmp_path, env={}, timeout=60)
    one_line_error(proc, 2, "--store", "--all")


def test_the_live_panel_reads_the_status_again_only_when_something_happened(tmp_path: Path) -> None:
    from migrator import commands

    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.upgrade(url)
    (tmp_path / "migrator.toml").write_text(CONFIG_TOML.replace("{store}", url))
    name = commands.load_config(tmp_path / "migrator.toml").settings.migration.name
    with Store.open(url) as store:
        m = store.create_migration(name, "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(m, [TableSpec("s", "t", source_rows=5)], "pending")
    watch = commands.StatusWatch(tmp_path / "migrator.toml", refresh_seconds=3600)
    try:
        first = watch.read()
        assert watch.read() is first and watch.reads == 1  # nothing new: nothing read but one probe
        with Store.open(url) as store:
            store.add_event(store.require_migration(name), "migration", "progress", {"tables_done": 1})
        assert watch.read().progress == {"tables_done": 1} and watch.reads == 2
    finally:
        watch.close()
