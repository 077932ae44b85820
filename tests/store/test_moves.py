"""Every move is one transaction with a compare-and-set on the previous state."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import func, select

from migrator.errors import ConcurrentUpdate, StoreError
from migrator.store import Store, TableSpec
from migrator.store.models import Event


def _migration(store: Store):  # type: ignore[no-untyped-def]
    return store.create_migration("m1", "unload-copy", "h" * 64, {"k": 1}, "created")


def _event_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)).scalar_one())


def test_migration_advance_is_compare_and_set(store: Store) -> None:
    m = _migration(store)
    moved = store.advance_migration(m, "start", "preflight")
    assert (moved.phase, moved.version) == ("preflight", m.version + 1)
    before = _event_count(store)
    with pytest.raises(ConcurrentUpdate, match="no longer in phase 'created'"):
        store.advance_migration(m, "start", "preflight")  # stale view
    assert _event_count(store) == before
    assert store.require_migration("m1").phase == "preflight"


def test_table_moves_record_one_event_each_and_refuse_stale_views(store: Store) -> None:
    m = _migration(store)
    assert store.add_tables(m, [TableSpec("public", "a", 10, 100), TableSpec("public", "b", 5, 50)], "pending") == 2
    assert store.add_tables(m, [TableSpec("public", "a", 10, 100)], "pending") == 0  # idempotent inventory
    task = store.find_table(m, "public", "a")
    assert task is not None
    claimed = store.claim_table(task, "start_unload", "unloading", 60, new_attempt=True)
    assert claimed.owner == store.owner_label() and claimed.attempt == 1 and claimed.lease_expires_at
    done = store.complete_step(claimed, "complete_unload", "unloaded", fields={"manifest_url": "s3://b/m"})
    assert done.owner is None and done.manifest_url == "s3://b/m"
    with pytest.raises(ConcurrentUpdate, match="public.a is no longer 'unloading'"):
        store.complete_step(claimed, "complete_unload", "unloaded")
    events = store.events(m, subject="table:public.a")
    assert [(e.trigger, e.from_state, e.to_state) for e in events] == [
        ("start_unload", "pending", "unloading"), ("complete_unload", "unloading", "unloaded")]
    failed = store.fail_table(done, "boom", to_state="failed", trigger="fail")
    assert failed.state == "failed" and failed.last_error == "boom"


def test_remote_actions_are_recorded_before_and_after(store: Store) -> None:
    m = _migration(store)
    first = store.begin_action(m, "provision-target", {"ClusterIdentifier": "x"})
    again = store.begin_action(m, "provision-target", {"ClusterIdentifier": "other"})
    assert first.status == again.status == "pending" and again.request == {"ClusterIdentifier": "x"}
    done = store.finish_action(m, "provision-target", {"ClusterStatus": "creating"})
    assert done.status == "done" and done.response == {"ClusterStatus": "creating"}
    with pytest.raises(ConcurrentUpdate):
        store.finish_action(m, "provision-target", {})


def test_read_only_store_cannot_write(store_url: str, store: Store) -> None:
    _migration(store)
    with Store.open(store_url, read_only=True) as reader:
        m = reader.require_migration("m1")
        with pytest.raises(StoreError):
            reader.advance_migration(m, "start", "preflight")
        reader.read_only = False  # even bypassing the guard, the connection itself refuses writes
        with pytest.raises(Exception):
            reader.advance_migration(m, "start", "preflight")
    assert store.require_migration("m1").phase == "created"


def _racer(url: str, task_id: int, barrier: multiprocessing.synchronize.Barrier,  # type: ignore[name-defined]
           results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with Store.open(url) as store:
        task = store.get_table(task_id)
        barrier.wait()
        try:
            store.complete_step(task, "complete_unload", "unloaded", fields={"manifest_url": "s3://b/m"})
            results.put("won")
        except ConcurrentUpdate as exc:
            results.put(f"lost: {exc.message}")


def test_two_processes_racing_one_wins(store_url: str, store: Store) -> None:
    m = _migration(store)
    store.add_tables(m, [TableSpec("public", "t", 1, 1)], "pending")
    task = store.find_table(m, "public", "t")
    assert task is not None
    task = store.claim_table(task, "start_unload", "unloading", 60)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(store_url, task.id, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes[0].startswith("lost: table public.t is no longer 'unloading'")
    assert outcomes[1] == "won"
    moves = [e for e in store.events(m, subject="table:public.t") if e.trigger == "complete_unload"]
    assert len(moves) == 1
    assert store.get_table(task.id).state == "unloaded"


def test_a_heartbeat_is_one_transaction_and_renews_nothing_once_the_lease_is_lost(store: Store) -> None:
    """A beat renews the run lease, the worker row and the held tables' leases in one commit (it was
    four: a store cost per beat that a long run pays many times); a lease another process took
    makes it raise LeaseHeld with nothing renewed."""
    from sqlalchemy import event, text

    from migrator.errors import LeaseHeld

    m = _migration(store)
    store.add_tables(m, [TableSpec("public", "a", 10, 100)], "pending")
    task = store.find_table(m, "public", "a")
    assert task is not None
    claimed = store.claim_table(task, "start_unload", "unloading", 1, new_attempt=True)
    lease = store.acquire_run_lease(m, 1)
    store.register_worker(m, "leader", 1)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    store.heartbeat(m.id, lease, 600, held_seconds=1200)
    assert len(commits) == 1
    renewed_table = store.find_table(m, "public", "a")
    renewed_lease = store.get_run_lease(m)
    assert renewed_table is not None and renewed_lease is not None and claimed.lease_expires_at is not None
    assert renewed_table.lease_expires_at is not None and renewed_table.lease_expires_at > claimed.lease_expires_at
    assert renewed_lease.expires_at > lease.expires_at
    assert [w.expires_at > lease.expires_at for w in store.list_workers(m)] == [True]
    with store.engine.begin() as conn:  # another process took the run over
        conn.execute(text("update run_lease set token = 'theirs' where migration_id = :m"), {"m": m.id})
    with pytest.raises(LeaseHeld):
        store.heartbeat(m.id, lease, 6000, held_seconds=12000)
    after = store.find_table(m, "public", "a")
    assert after is not None and after.lease_expires_at == renewed_table.lease_expires_at
