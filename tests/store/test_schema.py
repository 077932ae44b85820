"""The store's schema is created and changed only by alembic, on both backends."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import text

from migrator.errors import SchemaVersionError, StoreError, StoreNotFound
from migrator.store import Store, db


def test_upgrade_downgrade_upgrade_round_trip(store_url: str) -> None:
    assert db.upgrade(store_url) == db.head_revision()
    assert db.downgrade(store_url, "base") == "base"
    engine = db.create_store_engine(store_url)
    try:
        assert not [t for t in _tables(engine) if t != "alembic_version"]
    finally:
        engine.dispose()
    assert db.upgrade(store_url) == db.head_revision()
    with Store.open(store_url) as store:
        assert store.list_migrations() == []


def _tables(engine: object) -> list[str]:
    from sqlalchemy import inspect

    return inspect(engine).get_table_names()  # type: ignore[arg-type]


def test_models_and_migrations_do_not_drift(store_url: str) -> None:
    db.upgrade(store_url)
    cfg = db.alembic_config(store_url)
    engine = db.create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.check(cfg)  # raises if autogenerate would find differences
    finally:
        engine.dispose()


def test_drift_is_detected(store_url: str) -> None:
    """The check above can fail: an extra column the models lack is reported."""
    db.upgrade(store_url)
    engine = db.create_store_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE migration ADD COLUMN stray_column INTEGER"))
        cfg = db.alembic_config(store_url)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            with pytest.raises(CommandError):
                command.check(cfg)
    finally:
        engine.dispose()


def test_store_from_a_newer_version_is_refused(store_url: str) -> None:
    db.upgrade(store_url)
    engine = db.create_store_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer than this migrator"):
        Store.open(store_url)
    with pytest.raises(SchemaVersionError, match="newer"):
        db.upgrade(store_url)


def test_store_without_schema_is_refused(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        db.create_store_engine(store_url, create=True).dispose()
    with pytest.raises(SchemaVersionError, match="has no schema") as info:
        Store.open(store_url)
    assert "migrator db upgrade" in info.value.one_line()


def test_missing_sqlite_store_is_not_created_by_readers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nope' / 'state.db'}"
    with pytest.raises(StoreNotFound):
        Store.open(url, read_only=True)
    assert not (tmp_path / "nope").exists()


def test_sqlite_store_is_private_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "state.db"
    db.upgrade(f"sqlite:///{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Store.open(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_unreachable_postgres_gives_store_error() -> None:
    from migrator.sandbox.postgres import free_port

    url = f"postgresql+psycopg://nobody:secretpw@127.0.0.1:{free_port()}/x"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert "secretpw" not in str(info.value)
    assert "cannot reach" in str(info.value)


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a valid"):
        db.create_store_engine("not a url")
    with pytest.raises(StoreError, match="unsupported store backend"):
        db.create_store_engine("mysql://u:p@h/d")
