"""Shared fixtures: a real PostgreSQL (started here, never assumed), and store URLs
for both supported backends."""

from __future__ import annotations

import os

# Polls of the sandbox's control plane (operations of seconds here, not minutes) at most every
# second, in this process and in the `migrator` processes the tests start. Set before the product's
# modules are imported: the pause is read once.
os.environ.setdefault("MIGRATOR_AWS_POLL_CAP_SECONDS", "1")
# A table that failed transiently is retried after a backoff of 30 s on base (with jitter); the
# sandbox's faults clear at once, so the end-to-end runs retry on a 1 s base (same attempts, same
# events; tests/engine/test_tables.py checks the backoff itself).
os.environ.setdefault("MIGRATOR_TABLE_RETRY_BASE_SECONDS", "1")

import itertools  # noqa: E402
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.config import LoadedConfig
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, db
from tests import harness

pytest_plugins = ["migrator.sandbox.pytest_plugin"]

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store location on each backend (schema not yet created)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"store_{next(_db_counter)}"
    server.create_database(name)
    return server.url(name)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    db.upgrade(store_url)
    with Store.open(store_url) as s:
        yield s


def make_config(tmp_path: Path, store_url: str, **overrides: Any) -> LoadedConfig:
    """The offline default config (tests/harness.py) with ``overrides`` per section, as the product
    loads it (nothing written)."""
    migration = {"store": store_url, **(overrides.pop("migration", None) or {})}
    return harness.check(harness.config_data(migration=migration, **overrides), tmp_path / "migrator.toml")


#: The offline default config as text with a ``{store}`` placeholder, for tests that write the file
#: themselves (or change it into a deliberately bad one).
CONFIG_TOML = harness.toml_text(harness.config_data(migration={"store": "{store}"}))
