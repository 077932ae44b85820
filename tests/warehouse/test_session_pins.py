"""A user's own defaults (``ALTER USER ... SET timezone / datestyle``) must not change how the tool
stages or fingerprints dates and timestamps (issue 20, values: session timezone and datestyle).

Redshift applies a user's ALTER USER ... SET values when that user's session starts ("ALTER
USER", "timezone", "datestyle"); the tool pins both in every session it opens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from migrator.credentials import DbCredentials
from migrator.warehouse import checksum
from migrator.warehouse.connection import Endpoint, Session, Tls, connect
from migrator.warehouse.inventory import read_inventory

SRC = "tz-src"
USER, PASSWORD = "tz_reader", "Tz-reader-pass1"


@pytest.fixture(scope="module")
def cluster(sb: Any) -> Iterator[Any]:
    info = sb.create_cluster(SRC)
    conn = sb.connect(SRC, autocommit=True)
    cur = conn.cursor()
    cur.execute('create schema "tz"')
    cur.execute('create table "tz"."t" ("id" integer, "ts" timestamp, "tstz" timestamptz, "d" date)')
    cur.execute("insert into \"tz\".\"t\" values (1, '2024-01-02 03:04:05.678901', '2024-01-02 03:04:05+00', "
                "'2024-01-02'), (2, '1999-12-31 23:59:59', '2024-07-01 12:00:00+00', '2024-11-12')")
    cur.execute(f"create user {USER} password '{PASSWORD}'")
    cur.execute(f'grant usage on schema "tz" to {USER}')
    cur.execute(f'grant select on "tz"."t" to {USER}')
    cur.execute(f"alter user {USER} set timezone to 'America/New_York'")
    cur.execute(f"alter user {USER} set datestyle to 'SQL, DMY'")
    conn.close()
    yield info


def _connect(info: Any, user: str, password: str) -> Session:
    return Session.of(connect(Endpoint(info.host, info.port, info.database), DbCredentials(user, password, "test"),
                              tls=Tls(enabled=False), autocommit=True))


def test_sandbox_applies_a_users_defaults_when_its_session_starts(sb: Any, cluster: Any) -> None:
    import redshift_connector

    conn = redshift_connector.connect(host=cluster.host, port=cluster.port, database=cluster.database, user=USER,
                                      password=PASSWORD, ssl=False, timeout=60)
    try:
        cur = conn.cursor()
        cur.execute("show timezone")
        assert cur.fetchall()[0][0] == "America/New_York"
        cur.execute("show datestyle")
        assert cur.fetchall()[0][0] == "SQL, DMY"
        cur.execute("select cast(cast('2024-01-02 03:04:05+00' as timestamptz) as varchar(64))")
        assert cur.fetchall()[0][0].startswith("01/01/2024 22:04:05")  # its own zone (UTC-5) and date order
    finally:
        conn.close()


def test_tool_sessions_pin_timezone_and_datestyle(sb: Any, cluster: Any) -> None:
    """The same table fingerprinted by a session of the user with other defaults and by the
    master user's session gives the same checksum: both render in UTC, ISO."""
    with _connect(cluster, USER, PASSWORD) as mine, _connect(cluster, cluster.user, cluster.password) as master:
        assert mine.run("show timezone") == [("UTC",)] and mine.run("show datestyle") == [("ISO, MDY",)]
        t = next(iter(read_inventory(master, include=["tz.t"])))
        assert checksum.fingerprint(mine, "tz", "t", t.columns) == checksum.fingerprint(master, "tz", "t", t.columns)
        assert mine.run('select cast("tstz" as varchar(64)) from "tz"."t" where "id" = 1') == \
            [("2024-01-02 03:04:05+00",)]
