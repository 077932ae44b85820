"""Shared fixtures: a real PostgreSQL (started here, never assumed), and store URLs
for both supported backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.config import LoadedConfig, parse_config
from migrator.sandbox.postgres import PostgresServer
from migrator.store import Store, db

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
    data: dict[str, Any] = {
        "migration": {"name": "m1", "strategy": "unload-copy", "region": "us-east-1", "store": store_url},
        "source": {"cluster_id": "analytics", "password_env": "SRC_PW"},
        "target": {"cluster_id": "analytics-enc", "kms_key_id": "alias/k"},
        "staging": {"s3_uri": "s3://bucket/prefix/", "iam_role_arn": "arn:aws:iam::123456789012:role/R",
                    "kms_key_id": "alias/k"},
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return parse_config(data, tmp_path / "migrator.toml")


CONFIG_TOML = """\
[migration]
name = "m1"
strategy = "unload-copy"
region = "us-east-1"
store = "{store}"

[source]
cluster_id = "analytics"
password_env = "SRC_PW"

[target]
cluster_id = "analytics-enc"
kms_key_id = "alias/k"

[staging]
s3_uri = "s3://bucket/prefix/"
iam_role_arn = "arn:aws:iam::123456789012:role/R"
kms_key_id = "alias/k"
"""
