"""Installs the Redshift system-catalog emulation (catalog.sql) into a cluster's database.

The install is idempotent and runs as the database superuser (the drop tracking uses an
event trigger). Afterwards the database's default search_path ends in ``redshift_sys``,
so new sessions see ``svv_table_info``, ``fnv_hash``, ``getdate`` ... unqualified.
PostgreSQL's own ``pg_user`` and ``pg_group`` (pg_catalog, searched first) serve as
Redshift's: CREATE USER makes a LOGIN role and CREATE GROUP a NOLOGIN role, which is what
they list. Every name we add is absent from pg_catalog, so nothing needs qualifying.
"""

from __future__ import annotations

from importlib import resources
from typing import Union

import psycopg
from psycopg import sql

SCHEMA = "redshift_sys"
SEARCH_PATH = f'"$user", public, {SCHEMA}'

ConnLike = Union[str, psycopg.Connection]


def install_script() -> str:
    return resources.files(__package__).joinpath("catalog.sql").read_text(encoding="utf-8")


def install(dsn_or_conn: ConnLike, cluster_id: str, *, slices: int = 2) -> None:
    """Create or refresh schema ``redshift_sys`` and put it on the database's search_path."""
    if isinstance(dsn_or_conn, str):
        with psycopg.connect(dsn_or_conn, autocommit=True) as conn:
            _install(conn, cluster_id, slices)
    else:
        _install(dsn_or_conn, cluster_id, slices)


def _install(conn: psycopg.Connection, cluster_id: str, slices: int) -> None:
    with conn.transaction():
        # Two installs racing on one database would deadlock on the catalog; serialise them.
        conn.execute("select pg_advisory_xact_lock(hashtext('redshift_sys.install'))")
        conn.execute(install_script())
        conn.execute(
            "insert into redshift_sys.cluster_info (cluster_id, slices) values (%s, %s)"
            " on conflict (singleton) do update set cluster_id = excluded.cluster_id, slices = excluded.slices",
            (cluster_id, slices),
        )
        dbname = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            sql.SQL("alter database {} set search_path = " + SEARCH_PATH).format(sql.Identifier(dbname))
        )
        # Redshift's default is 0 ("extra_float_digits"); PostgreSQL's is 1.
        conn.execute(sql.SQL("alter database {} set extra_float_digits = 0").format(sql.Identifier(dbname)))
    # The session that installed keeps its old path; give it the new one too.
    conn.execute(sql.SQL("set search_path = " + SEARCH_PATH))
    conn.execute("set extra_float_digits = 0")


def is_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass('redshift_sys.rs_table') is not null").fetchone()
    return bool(row and row[0])
