"""Installs the Redshift system-catalog emulation (catalog.sql) into a cluster's database.

The install is idempotent and runs as the database superuser (the drop tracking uses an
event trigger). Afterwards the database's default search_path ends in ``pg_sandbox``,
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

SCHEMA = "pg_sandbox"
SEARCH_PATH = f'"$user", public, {SCHEMA}'

ConnLike = Union[str, psycopg.Connection]


def install_script() -> str:
    return resources.files(__package__).joinpath("catalog.sql").read_text(encoding="utf-8")


def install(dsn_or_conn: ConnLike, cluster_id: str, *, slices: int = 2) -> None:
    """Create or refresh schema ``pg_sandbox`` and put it on the database's search_path."""
    if isinstance(dsn_or_conn, str):
        with psycopg.connect(dsn_or_conn, autocommit=True) as conn:
            _install(conn, cluster_id, slices)
    else:
        _install(dsn_or_conn, cluster_id, slices)


def _install(conn: psycopg.Connection, cluster_id: str, slices: int) -> None:
    with conn.transaction():
        # Two installs racing on one database would deadlock on the catalog; serialise them.
        conn.execute("select pg_advisory_xact_lock(hashtext('pg_sandbox.install'))")
        # The pg_ prefix is reserved for system schemas: users can never create (or collide
        # with) ours, and catalog queries that skip pg_* skip it, as they skip Redshift's own.
        conn.execute("set local allow_system_table_mods = on")
        conn.execute(install_script())
        _set_cluster(conn, cluster_id, slices)
        dbname = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            sql.SQL("alter database {} set search_path = " + SEARCH_PATH).format(sql.Identifier(dbname))
        )
        # Redshift's default is 0 ("extra_float_digits"); PostgreSQL's is 1.
        conn.execute(sql.SQL("alter database {} set extra_float_digits = 0").format(sql.Identifier(dbname)))
    # The session that installed keeps its old path; give it the new one too.
    conn.execute(sql.SQL("set search_path = " + SEARCH_PATH))
    conn.execute("set extra_float_digits = 0")


def _set_cluster(conn: psycopg.Connection, cluster_id: str, slices: int) -> None:
    conn.execute(
        "insert into pg_sandbox.cluster_info (cluster_id, slices) values (%s, %s)"
        " on conflict (singleton) do update set cluster_id = excluded.cluster_id, slices = excluded.slices",
        (cluster_id, slices),
    )


def set_cluster(dsn_or_conn: ConnLike, cluster_id: str, *, slices: int = 2) -> None:
    """The per-cluster part of ``install``, for a database copied from one where the catalog was
    installed under another cluster's name (the search_path and other database settings travel
    with the copy, and with a rename of the database)."""
    if isinstance(dsn_or_conn, str):
        with psycopg.connect(dsn_or_conn, autocommit=True) as conn:
            _set_cluster(conn, cluster_id, slices)
    else:
        _set_cluster(dsn_or_conn, cluster_id, slices)


def set_layout(dsn_or_conn: ConnLike, *, slices: int, slices_per_node: int) -> None:
    """The cluster's slices (STV_SLICES): nodes x the node type's slices per node."""
    statement = "update pg_sandbox.cluster_info set slices = %s, slices_per_node = %s"
    if isinstance(dsn_or_conn, str):
        with psycopg.connect(dsn_or_conn, autocommit=True) as conn:
            conn.execute(statement, (slices, slices_per_node))
    else:
        dsn_or_conn.execute(statement, (slices, slices_per_node))


def is_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass('pg_sandbox.rs_table') is not null").fetchone()
    return bool(row and row[0])


# Per-object attributes keyed by oid and attnum, which a restore does not keep: carried over
# by schema, name and column name instead. System logs and deleted-row marks stay behind
# (a snapshot holds data and table definitions, not the cluster's query history).
_TABLE_ATTRS = """
select n.nspname, c.relname, t.diststyle,
       (select attname from pg_attribute where attrelid = t.reloid and attnum = t.distkey_attnum),
       t.sortkey_kind,
       array(select a.attname from unnest(t.sortkey_attnums) with ordinality k(attnum, pos)
             join pg_attribute a on a.attrelid = t.reloid and a.attnum = k.attnum order by k.pos),
       t.encode_auto, t.backup, t.create_time
from pg_sandbox.rs_table t join pg_class c on c.oid = t.reloid join pg_namespace n on n.oid = c.relnamespace
"""
_COLUMN_ATTRS = """
select n.nspname, c.relname, a.attname, r.encoding, r.identity_seed, r.identity_step
from pg_sandbox.rs_column r join pg_class c on c.oid = r.reloid join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = r.reloid and a.attnum = r.attnum
"""
_VIEW_ATTRS = """
select n.nspname, c.relname, v.late_binding
from pg_sandbox.rs_view v join pg_class c on c.oid = v.reloid join pg_namespace n on n.oid = c.relnamespace
"""
_TARGET_OID = ("select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
               "where n.nspname = %s and c.relname = %s")
_TARGET_ATTNUM = "select attnum from pg_attribute where attrelid = %s and attname = %s and not attisdropped"


def copy_metadata(source: psycopg.Connection, target: psycopg.Connection) -> None:
    """Table, column and view attributes of ``source`` onto the same-named objects of ``target``."""

    def oid(schema: str, name: str) -> int | None:
        row = target.execute(_TARGET_OID, (schema, name)).fetchone()
        return int(row[0]) if row else None

    def attnum(reloid: int, column: str | None) -> int | None:
        if column is None:
            return None
        row = target.execute(_TARGET_ATTNUM, (reloid, column)).fetchone()
        return int(row[0]) if row else None

    with target.transaction():
        for schema, name, diststyle, distkey, sortkind, sortcols, encode_auto, backup, created in \
                source.execute(_TABLE_ATTRS).fetchall():
            reloid = oid(schema, name)
            if reloid is None:
                continue
            sortnums = [n for n in (attnum(reloid, c) for c in sortcols) if n is not None]
            target.execute(
                "insert into pg_sandbox.rs_table (reloid, diststyle, distkey_attnum, sortkey_kind, sortkey_attnums,"
                " encode_auto, backup, create_time) values (%s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict (reloid) do update set diststyle = excluded.diststyle,"
                " distkey_attnum = excluded.distkey_attnum, sortkey_kind = excluded.sortkey_kind,"
                " sortkey_attnums = excluded.sortkey_attnums, encode_auto = excluded.encode_auto,"
                " backup = excluded.backup, create_time = excluded.create_time",
                (reloid, diststyle, attnum(reloid, distkey), sortkind, sortnums, encode_auto, backup, created))
        for schema, name, column, encoding, seed, step in source.execute(_COLUMN_ATTRS).fetchall():
            reloid = oid(schema, name)
            number = attnum(reloid, column) if reloid is not None else None
            if reloid is None or number is None:
                continue
            target.execute(
                "insert into pg_sandbox.rs_column (reloid, attnum, encoding, identity_seed, identity_step)"
                " values (%s, %s, %s, %s, %s) on conflict (reloid, attnum) do update set"
                " encoding = excluded.encoding, identity_seed = excluded.identity_seed,"
                " identity_step = excluded.identity_step", (reloid, number, encoding, seed, step))
        for schema, name, late in source.execute(_VIEW_ATTRS).fetchall():
            reloid = oid(schema, name)
            if reloid is not None:
                target.execute("insert into pg_sandbox.rs_view (reloid, late_binding) values (%s, %s)"
                               " on conflict (reloid) do update set late_binding = excluded.late_binding",
                               (reloid, late))
        for table in ("rs_external_schema", "rs_external_table"):
            rows = source.execute(sql.SQL("select * from pg_sandbox.{}").format(sql.Identifier(table))).fetchall()
            if rows:
                marks = sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))
                for row in rows:
                    target.execute(sql.SQL("insert into pg_sandbox.{} values ({}) on conflict do nothing").format(
                        sql.Identifier(table), marks), row)
