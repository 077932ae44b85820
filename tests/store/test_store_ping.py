"""A PostgreSQL store pings a pooled connection only when it sat idle (`STORE_PING_IDLE_SECONDS`),
and recovers from a connection the server dropped: on a real PostgreSQL whose backends are ended
with pg_terminate_backend from a separate admin connection (the server's own way of dropping one)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from migrator.errors import StoreError
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, db
from migrator.store.views import MigrationView

_ids = itertools.count()
#: What a new connection costs in pg_stat_database.xact_commit: the backend commits one transaction
#: as it starts (its catalogue lookups).
_CONNECT = 1


@pytest.fixture
def store_db(pg_server: PostgresServer) -> str:
    name = f"store_ping_{next(_ids)}"
    pg_server.create_database(name)
    db.upgrade(pg_server.url(name))
    return name


@pytest.fixture
def admin(pg_server: PostgresServer) -> Iterator[psycopg.Connection]:
    """A connection to another database of the same server: its own transactions count elsewhere."""
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        yield conn


def _terminate(admin: psycopg.Connection, dbname: str) -> int:
    """End every backend on ``dbname``, waiting (up to 10 s each) until each has exited: its stats
    are flushed by then. How many there were."""
    rows = admin.execute("select pg_terminate_backend(pid, 10000) from pg_stat_activity "
                         "where datname = %s and pid <> pg_backend_pid()", [dbname]).fetchall()
    assert all(r[0] for r in rows), rows
    return len(rows)


def _commits(admin: psycopg.Connection, dbname: str) -> int:
    admin.execute("select pg_stat_force_next_flush()")
    admin.execute("select pg_stat_clear_snapshot()")
    row = admin.execute("select xact_commit from pg_stat_database where datname = %s", [dbname]).fetchone()
    assert row is not None
    return int(row[0])


def _migration(store: Store) -> MigrationView:
    return store.create_migration("m1", "unload-copy", "h" * 64, {"k": 1}, "created")


def _setup(pg_server: PostgresServer, store_db: str, admin: psycopg.Connection) -> MigrationView:
    """A migration in the store, and no backend left on it (their stats flushed)."""
    with Store.open(pg_server.url(store_db)) as store:
        m = _migration(store)
    _terminate(admin, store_db)
    return m


def test_two_consecutive_writes_cost_two_committed_transactions(pg_server: PostgresServer, store_db: str,
                                                                 admin: psycopg.Connection) -> None:
    """No ping on a connection given back moments ago: before, each checkout after the first sent
    its own committed `SELECT 1`, and two writes after opening the store cost 4 (plus the 1 every
    new connection costs: PostgreSQL commits a transaction as a backend starts)."""
    m = _setup(pg_server, store_db, admin)
    before = _commits(admin, store_db)
    with Store.open(pg_server.url(store_db)) as store:  # reads the schema revision: a new connection
        store.add_event(m, "migration", "note", {"n": 1})  # the same connection, reused at once
        store.add_event(m, "migration", "note", {"n": 2})
        assert _terminate(admin, store_db) == 1  # one connection did it all; its stats flushed
    assert _commits(admin, store_db) - before == _CONNECT + 2


def test_two_consecutive_reads_commit_nothing(pg_server: PostgresServer, store_db: str,
                                              admin: psycopg.Connection) -> None:
    """A read's transaction is rolled back when its connection goes back to the pool: without the
    ping, reads commit nothing (before: two reads after opening the store committed 2 pings)."""
    m = _setup(pg_server, store_db, admin)
    before = _commits(admin, store_db)
    with Store.open(pg_server.url(store_db)) as store:
        assert store.require_migration("m1").id == m.id
        assert [v.name for v in store.list_migrations()] == ["m1"]
        assert _terminate(admin, store_db) == 1
    assert _commits(admin, store_db) - before == _CONNECT


def test_an_idle_connection_is_pinged_and_replaced_when_dead(pg_server: PostgresServer, store_db: str,
                                                             admin: psycopg.Connection,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "STORE_PING_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    with Store.open(pg_server.url(store_db)) as store:
        m = _migration(store)
        store.add_event(m, "migration", "note")
        assert _terminate(admin, store_db) == 1
        store.add_event(m, "migration", "note")  # the ping finds it dead; the pool reconnects
        assert store.require_migration("m1").version == m.version
        assert _terminate(admin, store_db) == 1  # one live connection, the new one
        # and the ping itself costs its committed transaction, as pre_ping's did
        before = _commits(admin, store_db)
        store.add_event(m, "migration", "note")
        store.add_event(m, "migration", "note")
        assert _terminate(admin, store_db) == 1
    # the first write: its ping failed, a new connection; the second: its ping, which commits
    assert _commits(admin, store_db) - before == _CONNECT + 2 + 1


def test_a_connection_dropped_before_it_counts_as_idle_fails_one_call_then_the_store_works(
        pg_server: PostgresServer, store_db: str, admin: psycopg.Connection) -> None:
    assert db.STORE_PING_IDLE_SECONDS >= 10  # the default: the connection below is reused unpinged
    with Store.open(pg_server.url(store_db)) as store:
        m = _migration(store)
        assert _terminate(admin, store_db) == 1
        with pytest.raises(StoreError) as failed:
            store.add_event(m, "migration", "note")
        assert failed.value.exit_code == 3
        message = str(failed.value)
        assert message.startswith("cannot reach the checkpoint store") and "\n" not in message, message
        assert pg_server.password not in message
        store.add_event(m, "migration", "note")  # the pool was invalidated: a new connection
        assert _terminate(admin, store_db) == 1
        with pytest.raises(StoreError):
            store.require_migration("m1")  # a read meets it the same way
        assert store.require_migration("m1").id == m.id


def test_a_read_only_store_still_pings_every_checkout(pg_server: PostgresServer, store_db: str,
                                                      admin: psycopg.Connection) -> None:
    """Read-only stores (status, reports) keep `pool_pre_ping`: a dropped connection is replaced
    before the read, however briefly it waited."""
    with Store.open(pg_server.url(store_db)) as store:
        _migration(store)
    with Store.open(pg_server.url(store_db), read_only=True) as reader:
        assert reader.require_migration("m1").name == "m1"
        assert _terminate(admin, store_db) == 1
        assert reader.require_migration("m1").name == "m1"
