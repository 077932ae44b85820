"""A copy worker's set-up on a restart: its target session opens while its source session opens
and the inventory is read (table_steps._Sessions), and a target it cannot log in to still fails
the set-up itself, before any table is picked, as when the two opened one after the other."""

from __future__ import annotations

import pytest

from migrator.engine.definitions import TABLE_MACHINE, load_definition

from tests.unload_copy.conftest import Migration

# A migration through the CLI against the sandbox: a minute, not seconds.
pytestmark = pytest.mark.slow


def _table_moves(m: Migration, after: int) -> list[str]:
    """The table moves into a step recorded after event ``after``."""
    with m.store() as store:
        events = store.events(store.require_migration(m.name))
    return [f"{e.trigger} {e.subject}" for e in events
            if e.id > after and e.subject.startswith("table:") and e.trigger.startswith("start_")]


def _last_event(m: Migration) -> int:
    with m.store() as store:
        return store.events(store.require_migration(m.name), limit=1, newest_first=True)[0].id


def _needing_operator(m: Migration) -> list[str]:
    table = load_definition(TABLE_MACHINE, guards=None, actions=None)
    with m.store() as store:
        return [t.qualified_name for t in store.list_tables(store.require_migration(m.name))
                if "needs_operator" in table.state(t.state).tags]


def test_target_refused_at_restart_fails_the_set_up_and_moves_no_table(migration: Migration) -> None:
    m = migration
    m.init()
    m.env["MIGRATOR_FAILPOINT"] = "after_unload"  # killed in the copy phase, the target already made
    crashed = m.cli("run", "--assume-frozen")
    assert crashed.returncode == -9, crashed.stderr
    del m.env["MIGRATOR_FAILPOINT"]
    seen = _last_event(m)
    right = m.env["UC_TARGET_PASSWORD"]
    m.env["UC_TARGET_PASSWORD"] = "WrongPassw0rd"  # the target now refuses the login
    refused = m.cli("run", "--assume-frozen")
    assert refused.returncode == 2, refused.stderr  # a wrong password: the operator's to fix (ConfigError)
    assert "password authentication failed" in refused.stderr, refused.stderr
    # The dead run's table was handed back (no target needed for that), and then nothing: no table
    # was picked, none failed into needs-operator for a session its worker could not open.
    assert _table_moves(m, seen) == []
    assert _needing_operator(m) == []
    m.env["UC_TARGET_PASSWORD"] = right
    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8, resumed.stderr
    assert m.table_digests(m.target) == m.table_digests(m.source)
