"""Upgrading a store to the fleet revision while a migration has tables in flight: nothing is lost,
the in-flight claim still belongs to its owner, and picks work at once."""

from __future__ import annotations

from sqlalchemy import text

from migrator.procinfo import ProcessIdentity
from migrator.store import Store, db


def test_upgrade_keeps_work_in_flight_and_picks_at_once(store_url: str) -> None:
    db.upgrade(store_url, "0001")
    engine = db.create_store_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "insert into migration (id, name, strategy, config_hash, config_fingerprint, phase, version, "
                "approvals, created_at, updated_at) values (1, 'm', 'unload-copy', :h, '{}', 'copying', 7, '{}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"h": "0" * 64})
            for i, (state, owner) in enumerate([("loading", "elsewhere:9:-"), ("pending", None),
                                                ("validated", None)]):
                conn.execute(text(
                    "insert into table_task (migration_id, schema_name, table_name, size_mb, source_rows, state, "
                    "version, attempt, owner, lease_expires_at, step_timings, updated_at) values (1, 's', :t, :s, "
                    "1, :state, 3, 1, :owner, CURRENT_TIMESTAMP + interval '1 day', '{}', CURRENT_TIMESTAMP)"
                    if store_url.startswith("postgresql") else
                    "insert into table_task (migration_id, schema_name, table_name, size_mb, source_rows, state, "
                    "version, attempt, owner, lease_expires_at, step_timings, updated_at) values (1, 's', :t, :s, "
                    "1, :state, 3, 1, :owner, datetime('now', '+1 day'), '{}', CURRENT_TIMESTAMP)"),
                    {"t": f"t{i}", "s": 10 - i, "state": state, "owner": owner})
    finally:
        engine.dispose()
    assert db.upgrade(store_url) == db.head_revision()
    with Store(db.create_store_engine(store_url), identity=ProcessIdentity("here", 1, None)) as store:
        m = store.require_migration("m")
        assert m.version == 7 and m.phase == "copying"
        by_name = {t.table_name: t for t in store.list_tables(m)}
        assert {n: (t.state, t.owner) for n, t in by_name.items()} == {
            "t0": ("loading", "elsewhere:9:-"), "t1": ("pending", None), "t2": ("validated", None)}
        assert [t.table_name for t in store.claimed_tables(m)] == ["t0"]
        picked = store.pick_table(m, ("loaded", "unloaded", "pending"), ("failed",), 3, 60)
        assert picked is not None and picked.table_name == "t1"
        assert store.list_workers(m) == []
