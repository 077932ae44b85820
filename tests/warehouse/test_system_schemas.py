"""Only Redshift's own schemas are left out of a migration: every user schema travels, whatever
its name, and the sandbox's emulation never shows up as one (issue 9, "The emulation's own
objects never show up as user schemas or tables")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from migrator.names import table_key
from migrator.warehouse import baseline as bl
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory
from migrator.warehouse.sql import query

CLUSTER = "sysnames-src"
#: Names a user may give a schema on Redshift that a tool could mistake for a system one.
USER_SCHEMAS = ("redshift_sys", "sandbox", "catalog", "system")


@pytest.fixture(scope="module")
def session(sb: Any) -> Iterator[Session]:
    sb.create_cluster(CLUSTER)
    with Session.of(sb.connect(CLUSTER, autocommit=True)) as s:
        for name in USER_SCHEMAS:
            s.run(f'create schema "{name}"')
            s.run(f'create table "{name}"."t" ("n" integer)')
            s.run(f'insert into "{name}"."t" values (1)')
        yield s


def test_every_user_schema_is_inventoried_and_counted(session: Session) -> None:
    keys = {t.pair for t in read_inventory(session)}
    assert {(name, "t") for name in USER_SCHEMAS} <= keys
    taken = bl.take(session.conn)
    assert {table_key(name, "t") for name in USER_SCHEMAS} <= set(taken.rows)


def test_user_catalog_lists_only_schemas_users_made(session: Session) -> None:
    schemas = {row[0] for row in session.run(query("schemas"))}
    assert schemas == {"public", *USER_SCHEMAS}
    # What a user's own catalog query sees outside the pg_ prefix and information_schema:
    listed = {row[0] for row in session.run(
        "select nspname from pg_namespace where left(nspname, 3) <> 'pg_' and nspname <> 'information_schema'")}
    assert listed == {"public", *USER_SCHEMAS}
