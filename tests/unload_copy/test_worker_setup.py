"""A run's start-up: the warehouse driver and the AWS clients its first steps use are made in a
thread of their own while it reads its store (unload_copy.warm_up), and each copy worker's target
session opens while its source session opens and the inventory is read (table_steps._Sessions);
a target it cannot log in to still fails the set-up itself, before any table is picked, as when
the two opened one after the other."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.aws import clients
from migrator.config import LoadedConfig
from migrator.engine.definitions import TABLE_MACHINE, load_definition
from migrator.errors import MigratorError
from migrator.strategies import recorded, unload_copy
from tests.harness import _forget_process_caches, check, config_data

from tests.unload_copy.conftest import Migration

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


@pytest.mark.slow  # a migration through the CLI against the sandbox: a minute, not seconds
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


def _offline_config(tmp_path: Path) -> LoadedConfig:
    return check(config_data(), tmp_path / "migrator.toml")


@pytest.mark.usefixtures("fresh_process_caches")
def test_warm_up_makes_the_clients_the_run_then_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = _offline_config(tmp_path)
    unload_copy.warm_up(config).join(timeout=120)
    assert "redshift_connector" in sys.modules
    made = clients._CLIENTS[clients.shared_session()]
    assert {key[0] for key in made} >= set(unload_copy.WARM_CLIENTS)
    # The very objects the run's own calls get (nothing made twice).
    run_clients = recorded.clients_for(config.settings)
    for service in unload_copy.WARM_CLIENTS:
        assert any(run_clients.client(service) is found for found in made.values())


@pytest.mark.usefixtures("fresh_process_caches")
def test_warm_up_that_fails_is_silent_and_the_run_reports_the_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    escaped: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    config = _offline_config(tmp_path)
    thread = unload_copy.warm_up(config)
    thread.join(timeout=120)
    assert not thread.is_alive() and escaped == []
    # Nothing cached by the failed warm-up: the run's own call meets the error and says it.
    with pytest.raises(MigratorError) as failed:
        recorded.clients_for(config.settings).client("s3")
    assert "no-such-profile" in failed.value.one_line()


@pytest.fixture
def fresh_process_caches() -> Iterator[None]:
    """Clients made by the test's own environment only, and none left to the tests after it."""
    _forget_process_caches()
    yield
    _forget_process_caches()
