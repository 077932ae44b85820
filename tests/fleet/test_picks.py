"""The store's pick: the next table is one index probe, concurrent pickers never share a table
(SKIP LOCKED on PostgreSQL), and a dead worker's reservation comes back once its lease ran out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from migrator.procinfo import ProcessIdentity
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, TableSpec, db
from tests.conftest import CONFIG_TOML
from tests.harness import one_line_error, run_migrator

STATES = ("loaded", "unloaded", "pending")
RETRY = ("failed",)


@pytest.fixture
def seeded(store_url: str) -> Iterator[tuple[str, int]]:
    db.upgrade(store_url)
    with Store.open(store_url) as store:
        m = store.create_migration("m", "unload-copy", "0" * 64, {}, "copying")
        store.add_tables(m, [TableSpec("s", f"t{i:03d}", size_mb=i, source_rows=i) for i in range(40)], "pending")
    yield store_url, m.id


def _store(url: str, pid: int, host: str = "host-a") -> Store:
    return Store(db.create_store_engine(url), identity=ProcessIdentity(host, pid, None))


def test_picks_go_largest_first_and_a_reserved_table_is_not_picked_again(seeded: tuple[str, int]) -> None:
    url, _ = seeded
    with _store(url, 1) as one, _store(url, 2) as two:
        m = one.require_migration("m")
        first = one.pick_table(m, STATES, RETRY, 3, 60)
        second = two.pick_table(m, STATES, RETRY, 3, 60)
        assert first is not None and second is not None
        assert (first.table_name, second.table_name) == ("t039", "t038")
        assert first.owner == one.owner_label() and second.owner == two.owner_label()


def test_concurrent_pickers_never_get_the_same_table(seeded: tuple[str, int]) -> None:
    url, _ = seeded
    picked: dict[int, list[str]] = {}

    def picker(pid: int) -> None:
        with _store(url, pid) as store:
            m = store.require_migration("m")
            mine = picked.setdefault(pid, [])
            while (task := store.pick_table(m, STATES, RETRY, 3, 60)) is not None:
                mine.append(task.table_name)

    threads = [threading.Thread(target=picker, args=(pid,)) for pid in (11, 12, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [name for names in picked.values() for name in names]
    assert sorted(every) == [f"t{i:03d}" for i in range(40)]  # each table once, none lost


def test_a_row_another_transaction_locks_is_skipped_not_waited_for(pg_server: PostgresServer) -> None:
    pg_server.create_database("fleet_skip_locked")
    url = pg_server.url("fleet_skip_locked")
    db.upgrade(url)
    with Store.open(url) as setup:
        m = setup.create_migration("m", "unload-copy", "0" * 64, {}, "copying")
        setup.add_tables(m, [TableSpec("s", f"t{i}", size_mb=i) for i in range(3)], "pending")
    locker = db.create_store_engine(url)
    got: list[object] = []
    try:
        with locker.begin() as conn, _store(url, 21) as store:
            conn.execute(text("select id from table_task where table_name = 't2' for update"))
            picker = threading.Thread(target=lambda: got.append(store.pick_table(m, STATES, RETRY, 3, 60)),
                                      daemon=True)
            picker.start()
            picker.join(timeout=30)  # without SKIP LOCKED the pick would wait for this transaction
            assert got, "the pick waited for a row another transaction locks"
    finally:
        locker.dispose()
    task = got[0]
    assert task is not None and task.table_name == "t1"  # type: ignore[attr-defined]


def test_a_dead_workers_reservation_returns_after_its_lease(seeded: tuple[str, int]) -> None:
    url, _ = seeded
    with _store(url, 31, host="elsewhere") as gone, _store(url, 32) as alive:
        m = alive.require_migration("m")
        held = gone.pick_table(m, STATES, RETRY, 3, 60)
        assert held is not None and held.table_name == "t039"
        # A live lease on another host: the table is not free, the next largest is picked.
        assert alive.pick_table(m, STATES, RETRY, 3, 60).table_name == "t038"  # type: ignore[union-attr]
        # That host's worker died; its lease runs out (here: it was taken for no time at all).
        expired = gone.pick_table(m, STATES, RETRY, 3, -1)
        assert expired is not None and expired.table_name == "t037"
        again = alive.pick_table(m, STATES, RETRY, 3, 60)
        assert again is not None and again.table_name == "t037" and again.owner == alive.owner_label()


def test_a_failed_table_is_picked_only_once_its_retry_time_came_and_while_attempts_are_left(
        seeded: tuple[str, int]) -> None:
    url, mid = seeded
    with _store(url, 41) as store:
        m = store.require_migration("m")
        with store.engine.begin() as conn:
            conn.execute(text("update table_task set state = 'validated' where migration_id = :m"), {"m": mid})
            conn.execute(text("update table_task set state = 'failed', attempt = 1 where table_name in "
                              "('t001', 't002')"))
            conn.execute(text("update table_task set attempt = 3 where table_name = 't002'"))
        assert store.pick_table(m, STATES, RETRY, 3, 60) is None  # failed, but no retry scheduled
        assert store.arm_retries(m, RETRY, 3) == 1  # t002 used its attempts
        task = store.pick_table(m, STATES, RETRY, 3, 60)
        assert task is not None and task.table_name == "t001" and task.ready_at is None
        assert store.pick_table(m, STATES, RETRY, 3, 60) is None


def test_the_pick_reads_its_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.upgrade(url)
    engine = db.create_store_engine(url)
    try:
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(
                "explain query plan select id from table_task where migration_id = 1 and state = 'pending' "
                "and owner is null order by size_mb desc, id desc limit 1")))
    finally:
        engine.dispose()
    assert "ix_table_task_pick" in plan and "TEMP B-TREE" not in plan, plan


def test_worker_is_refused_on_a_sqlite_store_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    (tmp_path / "migrator.toml").write_text(CONFIG_TOML.replace("{store}", url))
    db.upgrade(url)
    proc = run_migrator(["run", "--worker", "-c", str(tmp_path / "migrator.toml")], cwd=tmp_path,
                        env={"MIGRATOR_CONFIG": ""}, timeout=60)
    one_line_error(proc, 2, "--worker needs a PostgreSQL store")
    with Store.open(url) as store:
        assert store.list_migrations() == [] and store.list_workers() == []
