"""Table parts in the checkpoint store: the alembic revision upgrades a store with work in
flight, boundaries are recorded once, and part moves are compare-and-set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from migrator.errors import ConcurrentUpdate
from migrator.store import PartSpec, Store, db
from migrator.store.models import Event, Migration, TableTask

SPECS = [PartSpec(i, 4, "id", None if i == 0 else str(i * 100), None if i == 3 else str((i + 1) * 100), 100, 10)
         for i in range(4)]


def test_upgrade_keeps_a_table_in_flight_and_then_takes_parts(store_url: str) -> None:
    db.upgrade(store_url, "0001")
    now = datetime.now(UTC)
    engine = db.create_store_engine(store_url)
    try:
        with engine.begin() as conn:
            mid = conn.execute(insert(Migration).values(
                name="m", strategy="unload-copy", config_hash="h", config_fingerprint={}, phase="copying",
                version=3, approvals={}, created_at=now, updated_at=now)).inserted_primary_key[0]
            conn.execute(insert(TableTask).values(
                migration_id=mid, schema_name="public", table_name="facts", size_mb=5000, source_rows=10 ** 7,
                state="loading", version=4, attempt=1, owner="host:123:-", step_timings={}, updated_at=now,
                manifest_url="s3://b/m/public.facts/attempt-1/manifest", rows_unloaded=10 ** 7))
            conn.execute(insert(Event).values(migration_id=mid, at=now, subject="table:public.facts",
                                              from_state="unloaded", to_state="loading", trigger="start_load",
                                              detail={}, host="host", pid=123))
    finally:
        engine.dispose()
    assert db.upgrade(store_url) == db.head_revision()
    with Store.open(store_url) as store:
        migration = store.require_migration("m")
        (task,) = store.list_tables(migration)
        # The table in flight is exactly as it was: its lease owner, state, attempt and manifest.
        assert (task.state, task.version, task.attempt, task.owner) == ("loading", 4, 1, "host:123:-")
        assert task.manifest_url and store.list_parts(task.id) == []
        assert [e.trigger for e in store.events(migration)] == ["start_load"]
        parts = store.add_parts(task, SPECS, "pending")
        assert [p.part_no for p in parts] == [0, 1, 2, 3] and parts[3].upper_bound is None
        assert store.part_counts(migration, ["validated"]) == {task.id: (4, 0)}


def test_boundaries_are_recorded_once_and_moves_compare_and_set(store: Store) -> None:
    migration = store.create_migration("m", "unload-copy", "h", {}, "created")
    from migrator.store import TableSpec

    store.add_tables(migration, [TableSpec("public", "facts", 100, 400)], "pending")
    (task,) = store.list_tables(migration)
    first = store.add_parts(task, SPECS, "pending")
    again = store.add_parts(task, [PartSpec(0, 1, "other", None, None, 400, 100)], "pending")
    assert [(p.part_column, p.lower_bound, p.upper_bound) for p in again] == [
        (p.part_column, p.lower_bound, p.upper_bound) for p in first]
    part = first[1]
    moved = store.move_part(part, task.subject, "start_unload", "unloading", take_lease_seconds=60,
                            new_attempt=True)
    assert (moved.state, moved.attempt, moved.owner) == ("unloading", 1, store.owner_label())
    with pytest.raises(ConcurrentUpdate):
        store.move_part(part, task.subject, "start_unload", "unloading", take_lease_seconds=60)
    loaded = store.move_part(moved, task.subject, "complete_load", "loaded", fields={"rows_loaded": 100},
                             release_lease=True, event="part_loaded", event_detail={"rows": 100})
    assert loaded.owner is None and loaded.rows_loaded == 100
    events = [(e.trigger, e.detail) for e in store.events(migration, subject=task.subject)]
    assert ("part_loaded", {"part": 1, "rows": 100}) in events
    assert store.part_counts(migration, ["loaded"]) == {task.id: (4, 1)}
    assert store.drop_parts(task, "made again") == 4 and store.list_parts(task.id) == []
