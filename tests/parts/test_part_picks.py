"""Parts are picked from the store like tables (Store.pick_work / pick_part): largest first across
all parts of all tables, only while their table rests in its parted state, never by two pickers at
once (SKIP LOCKED on PostgreSQL), a dead worker's part back after its lease (or at once when its pid
is gone here), and a parted table picked again only once all its parts are done."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from migrator.procinfo import ProcessIdentity
from migrator.sandbox.postgres import PostgresServer
from migrator.store import PartSpec, Probe, Store, TableSpec, TableView, db

PARTED = ("parted",)
PART_STATES = ("loading", "unloaded", "pending")
PART_RETRY = ("failed",)


def _store(url: str, pid: int, host: str = "host-a") -> Store:
    return Store(db.create_store_engine(url), identity=ProcessIdentity(host, pid, None))


def _parted(store: Store, m: object, name: str, size: int, parts: int) -> TableView:
    store.add_tables(m, [TableSpec("s", name, size_mb=size, source_rows=size)], "pending")  # type: ignore[arg-type]
    task = store.find_table(m, "s", name)  # type: ignore[arg-type]
    assert task is not None
    specs = [PartSpec(i, parts, "id", str(i), str(i + 1), 10, size // parts + i) for i in range(parts)]
    store.add_parts(task, specs, "pending")
    with store.engine.begin() as conn:
        conn.execute(text("update table_task set state = 'parted' where id = :i"), {"i": task.id})
    return store.get_table(task.id)


@pytest.fixture
def seeded(store_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    db.upgrade(store_url)
    with Store.open(store_url) as store:
        m = store.create_migration("m", "unload-copy", "0" * 64, {}, "copying")
        a = _parted(store, m, "a", 80, 8)   # parts of 10..17 MB
        b = _parted(store, m, "b", 120, 8)  # parts of 15..22 MB
        store.add_tables(m, [TableSpec("s", "whole", size_mb=1000, source_rows=1)], "pending")
    yield store_url, {"a": a.id, "b": b.id}


def test_parts_go_largest_first_across_tables_and_each_once(seeded: tuple[str, dict[str, int]]) -> None:
    url, ids = seeded
    with _store(url, 1) as one, _store(url, 2) as two:
        m = one.require_migration("m")
        got = []
        while (part := (one if len(got) % 2 else two).pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)):
            got.append((part.table_id, part.est_mb))
    assert len(got) == 16 and len(set(got)) == 16
    assert [mb for _, mb in got] == sorted((mb for _, mb in got), reverse=True)
    assert {t for t, _ in got[:4]} == {ids["b"]}  # b's parts are the largest


def test_a_part_is_picked_only_while_its_table_is_parted_and_the_table_only_once_parts_are_done(
        seeded: tuple[str, dict[str, int]]) -> None:
    url, ids = seeded
    with _store(url, 3) as store:
        m = store.require_migration("m")
        with store.engine.begin() as conn:
            conn.execute(text("update table_task set state = 'failed' where id = :i"), {"i": ids["b"]})
            conn.execute(text("update table_part set state = 'validated' where table_id = :i and part_no <> 7"),
                         {"i": ids["a"]})
        joinable = [Probe("table", "parted", joinable=True)]
        # a still has a part to do: the table is not picked; b is not parted: its parts wait.
        assert store.pick_work(m, joinable, 60, part_done_states=("validated", "mismatched")) is None
        last = store.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)
        assert last is not None and (last.table_id, last.part_no) == (ids["a"], 7)
        assert store.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED) is None
        with store.engine.begin() as conn:
            conn.execute(text("update table_part set state = 'validated', owner = null where id = :i"),
                         {"i": last.id})
        table = store.pick_work(m, joinable, 60, part_done_states=("validated", "mismatched"))
        assert isinstance(table, TableView) and table.id == ids["a"] and table.owner == store.owner_label()


def test_concurrent_pickers_never_get_the_same_part(seeded: tuple[str, dict[str, int]]) -> None:
    url, _ = seeded
    picked: dict[int, list[int]] = {}

    def picker(pid: int) -> None:
        with _store(url, pid) as store:
            m = store.require_migration("m")
            mine = picked.setdefault(pid, [])
            while (part := store.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)) is not None:
                mine.append(part.id)

    threads = [threading.Thread(target=picker, args=(pid,)) for pid in (11, 12, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in picked.values() for i in ids]
    assert len(every) == 16 and len(set(every)) == 16  # each part once, none lost


def test_a_dead_workers_part_in_flight_comes_back(seeded: tuple[str, dict[str, int]]) -> None:
    url, _ = seeded
    with _store(url, 31, host="elsewhere") as gone, _store(url, 99999999) as dead_here, _store(url, 32) as alive:
        m = alive.require_migration("m")
        far = gone.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)
        near = dead_here.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)
        assert far is not None and near is not None
        for holder, part in ((gone, far), (dead_here, near)):
            holder.move_part(part, "table:s.x", "start_unload", "unloading", take_lease_seconds=60, new_attempt=True)
        # Live leases: neither is picked (the next largest pending part is).
        other = alive.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)
        assert other is not None and other.id not in (far.id, near.id)
        # The one whose pid is gone on this host comes back at once; the other host's after its lease.
        expired = alive.expire_dead_part_leases(m)
        assert [p.id for p in expired] == [near.id]
        back = alive.pick_work(m, [Probe("part", "unloading", table_states=PARTED)], 60)
        assert back is not None and back.id == near.id and back.taken_from == dead_here.owner_label()
        assert alive.pick_work(m, [Probe("part", "unloading", table_states=PARTED)], 60) is None
        alive.renew_part_leases(60, m.id)
        with alive.engine.begin() as conn:  # the far worker's lease ran out
            conn.execute(text("update table_part set lease_expires_at = :t where id = :i"),
                         {"t": "2000-01-01 00:00:00+00:00", "i": far.id})
        late = alive.pick_work(m, [Probe("part", "unloading", table_states=PARTED)], 60)
        assert late is not None and late.id == far.id and late.taken_from == gone.owner_label()


def test_a_part_row_another_transaction_locks_is_skipped_not_waited_for(pg_server: PostgresServer) -> None:
    pg_server.create_database("parts_skip_locked")
    url = pg_server.url("parts_skip_locked")
    db.upgrade(url)
    with Store.open(url) as setup:
        m = setup.create_migration("m", "unload-copy", "0" * 64, {}, "copying")
        a = _parted(setup, m, "a", 80, 8)
    locker = db.create_store_engine(url)
    got: list[object] = []
    try:
        with locker.begin() as conn, _store(url, 21) as store:
            # The largest part's row locked by another transaction (a pick locks only the part's
            # row: its table's row is shared by the pickers of all its parts).
            conn.execute(text("select id from table_part where table_id = :t and part_no = 7 for update"),
                         {"t": a.id})
            picker = threading.Thread(
                target=lambda: got.append(store.pick_part(m, PART_STATES, PART_RETRY, 3, 60, PARTED)), daemon=True)
            picker.start()
            picker.join(timeout=30)
            assert got, "the pick waited for a row another transaction locks"
    finally:
        locker.dispose()
    part = got[0]
    assert part is not None and part.part_no == 6  # type: ignore[attr-defined]


def test_the_part_pick_reads_its_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.upgrade(url)
    engine = db.create_store_engine(url)
    try:
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(
                "explain query plan select id from table_part where migration_id = 1 and state = 'pending' "
                "and owner is null order by est_mb desc, id desc limit 1")))
    finally:
        engine.dispose()
    assert "ix_table_part_pick" in plan and "TEMP B-TREE" not in plan, plan
