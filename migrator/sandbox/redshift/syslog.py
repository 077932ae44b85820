"""System-log emulation: fills pg_sandbox.query_log (svl_qlog, stv_recents, stl_query),
stl_scan, stl_insert, stl_delete, stl_load_commits, stl_load_errors, stl_unload_log and
stl_connection_log (from the proxy's session events: who connected from which address).

Like Redshift's STL views ("STL views for logging": about seven days of log history), rows
older than RETENTION are dropped: each new session purges them before it is logged.

Writes go through the observer's own autocommit connection, because Redshift's system
logs are not transactional: a rolled-back INSERT still leaves its stl_insert row.
Statement boundaries are known only when a statement finished, so starttime = endtime
for proxied statements. UNLOAD and COPY are one query each, as on Redshift: the first engine
hook of the running statement (a file unloaded, a load error, the load's commit) opens its
stl_query row with a query id that every row the statement logs carries, and the statement's
end (``after_statement``, or ``after_failure`` when it failed) closes that same row. Rows
counts for stl_scan come from the table's row estimate (PostgreSQL does not say how many rows
a scan read).
"""

from __future__ import annotations

import threading
from typing import Iterable, Sequence

import psycopg
import sqlglot
from sqlglot import exp

from migrator.sandbox.interfaces import SessionInfo

_SCAN_TYPE_PERMANENT = 2
#: How long the STL tables keep a row ("STL views for logging": "approximately seven days").
RETENTION_DAYS = 7
#: Each log table and the column that dates its rows.
_DATED = {"query_log": "endtime", "stl_scan": "endtime", "stl_insert": "endtime", "stl_delete": "endtime",
          "stl_load_commits": "curtime", "stl_load_errors": "starttime", "stl_unload_log": "end_time",
          "stl_connection_log": "recordtime"}


def referenced_tables(sql: str) -> tuple[list[str], list[str]]:
    """(tables read, tables written) as SQL text naming them, CTE names excluded."""
    try:
        tree = sqlglot.parse_one(sql, read="redshift")
    except Exception:  # sqlglot raises several error types; an unparsable statement logs no tables
        return [], []
    if tree is None:
        return [], []
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    written: list[str] = []
    target = None
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        target = tree.this.this if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Schema) else tree.this
        if isinstance(target, exp.Table):
            written.append(_table_sql(target))
    read: list[str] = []
    for t in tree.find_all(exp.Table):
        if t is target or not t.name or (not t.db and t.name.lower() in ctes):
            continue
        name = _table_sql(t)
        if name not in read:
            read.append(name)
    return read, written


def _table_sql(t: exp.Table) -> str:
    parts = [p for p in (t.args.get("catalog"), t.args.get("db"), t.args.get("this")) if p is not None]
    out = []
    for p in parts:
        if isinstance(p, exp.Identifier):
            out.append('"' + p.name.replace('"', '""') + '"' if p.quoted else p.name.lower())
        else:
            out.append(p.sql(dialect="postgres"))
    return ".".join(out)


class SystemLog:
    """Observer for one emulated cluster's database (``dsn`` as the admin user)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # the proxy calls from several worker threads
        #: pid -> (text, query id) of the UNLOAD/COPY running on that session, from its first hook
        #: until the statement ends (after_statement / after_failure / the session ends).
        self._running: dict[int, tuple[str, int]] = {}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _c(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
            # The logs keep whatever text was sent, multibyte included, in their CHAR columns.
            self._conn.execute("set pg_sandbox.internal = on")
        return self._conn

    def _userid(self, conn: psycopg.Connection, user: str) -> int:
        row = conn.execute("select oid::int from pg_roles where rolname = %s", (user,)).fetchone()
        return int(row[0]) if row else 0

    def _new_query(self, conn: psycopg.Connection, session: SessionInfo, text: str, aborted: bool = False) -> int:
        row = conn.execute(
            "insert into pg_sandbox.query_log (query, userid, user_name, db_name, pid, starttime, endtime, aborted,"
            " querytxt, label)"
            " select nextval('pg_sandbox.query_seq'), %s, %s, %s, %s, now() at time zone 'utc',"
            " clock_timestamp() at time zone 'utc', %s, %s, %s returning query",
            (self._userid(conn, session.user), session.user, session.database, session.pid, int(aborted), text,
             (session.query_group or "default")[:320]),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _running_query(self, conn: psycopg.Connection, session: SessionInfo, text: str,
                       aborted: bool = False) -> int:
        """The query id of the statement running on ``session``: the one an earlier hook of the
        same statement opened, else a new stl_query row (its text the statement's)."""
        running = self._running.get(session.pid)
        if running is not None and running[0] == text:
            if aborted:
                conn.execute("update pg_sandbox.query_log set aborted = 1 where query = %s", (running[1],))
            return running[1]
        query = self._new_query(conn, session, text, aborted)
        self._running[session.pid] = (text, query)
        return query

    def _end_query(self, conn: psycopg.Connection, session: SessionInfo, sql: str, aborted: bool) -> int | None:
        """Close the running statement's row (its text, endtime, aborted) if a hook opened one
        for this very statement; a row left by another statement is forgotten, never reused."""
        running = self._running.pop(session.pid, None)
        if running is None or running[0] != sql:
            return None
        conn.execute(
            "update pg_sandbox.query_log set querytxt = %s, endtime = clock_timestamp() at time zone 'utc',"
            " aborted = %s where query = %s", (sql, int(aborted), running[1]))
        return running[1]

    # ------------------------------------------------------------------ observer
    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> int:
        """Log one finished statement; returns its query id (an UNLOAD's or COPY's, opened by its
        hooks, is closed here rather than logged twice)."""
        read, written = referenced_tables(sql)
        verb = tag.split(" ", 1)[0].upper() if tag else ""
        count = _tag_count(tag)
        with self._lock:
            conn = self._c()
            opened = self._end_query(conn, session, sql, aborted=False)
            if opened is not None:
                return opened  # its scans and writes were logged by its hooks
            query = self._new_query(conn, session, sql)
            userid = self._userid(conn, session.user)
            for name in read:
                self._scan(conn, userid, query, name)
            for name in written:
                if verb in ("INSERT", "COPY", "UPDATE", "MERGE"):
                    self._write(conn, "stl_insert", userid, query, name, count)
                if verb in ("DELETE", "UPDATE", "MERGE"):
                    self._write(conn, "stl_delete", userid, query, name, count)
            return query

    def after_failure(self, sql: str, session: SessionInfo) -> None:
        """A statement failed: the row its hooks opened (if any) ends aborted, and the session's
        next statement starts afresh. Failed statements no hook saw are not logged, as before."""
        with self._lock:
            self._end_query(self._c(), session, sql, aborted=True)

    def _scan(self, conn: psycopg.Connection, userid: int, query: int, name: str) -> None:
        conn.execute(
            "insert into pg_sandbox.stl_scan (userid, query, slice, segment, step, starttime, endtime, tasknum,"
            " rows, bytes, fetches, type, tbl, is_rrscan, is_delayed_scan, rows_pre_filter, rows_pre_user_filter,"
            " perm_table_name, is_rlf_scan, is_rlf_scan_reason, num_em_blocks, checksum, runtime_filtering,"
            " scan_region, num_sortkey_as_predicate)"
            " select %s, %s, 0, 0, 0, now() at time zone 'utc', clock_timestamp() at time zone 'utc', 0,"
            " greatest(c.reltuples, 0)::bigint, pg_relation_size(c.oid), 0, %s, c.oid::int, 'f', 'f',"
            " greatest(c.reltuples, 0)::bigint, greatest(c.reltuples, 0)::bigint, c.relname, 'f', 0, 0, 0, 'f', 0, 0"
            " from pg_class c where c.oid = to_regclass(%s) and c.relkind in ('r', 'p')"
            " and c.relnamespace <> 'pg_sandbox'::regnamespace",
            (userid, query, _SCAN_TYPE_PERMANENT, name),
        )

    def _write(self, conn: psycopg.Connection, table: str, userid: int, query: int, name: str, rows: int) -> None:
        conn.execute(
            f"insert into pg_sandbox.{table} (userid, query, slice, segment, step, starttime, endtime, tasknum, rows, tbl)"
            " select %s, %s, 0, 0, 0, now() at time zone 'utc', clock_timestamp() at time zone 'utc', 0, %s, c.oid::int"
            " from pg_class c where c.oid = to_regclass(%s)",
            (userid, query, rows, name),
        )

    # ------------------------------------------------------------------ connections
    def on_connection(self, event: str, session: SessionInfo) -> None:
        """STL_CONNECTION_LOG rows for a session: "authenticated" and "initiating session" when it
        starts (the older log rows past retention go first), "disconnecting session" when it ends."""
        with self._lock:
            conn = self._c()
            # A new or a closed session has nothing running: no id is carried past it.
            self._running.pop(session.pid, None)
            if event == "initiating session":
                self._purge(conn)
                events = ["authenticated", "initiating session"]
            else:
                events = [event]
            for name in events:
                conn.execute(
                    "insert into pg_sandbox.stl_connection_log (event, recordtime, remotehost, remoteport, pid, dbname,"
                    " username, authmethod, duration, sslversion, sslcipher, mtu, sslcompression, sslexpansion,"
                    " iamauthguid, application_name, os_version, driver_version, plugin_name, protocol_version,"
                    " sessionid, compression)"
                    " values (%s, clock_timestamp() at time zone 'utc', %s, %s, %s, %s, %s, 'password',"
                    " case when %s = 'disconnecting session' then coalesce((select extract(epoch from"
                    "   clock_timestamp() at time zone 'utc' - max(recordtime)) * 1000000 from pg_sandbox.stl_connection_log"
                    "   where pid = %s and event = 'initiating session'), 0)::int else 0 end,"
                    " '', '', 0, '', '', '', %s, '', '', '', 0, '', '')",
                    (name, session.remote_host[:45], str(session.remote_port or ""), session.pid,
                     session.database[:50], session.user[:50], name, session.pid, session.application_name[:250]),
                )

    @staticmethod
    def _purge(conn: psycopg.Connection) -> None:
        for table, column in _DATED.items():
            conn.execute(f"delete from pg_sandbox.{table} where {column} < (now() at time zone 'utc')"
                         f" - make_interval(days => %s)", (RETENTION_DAYS,))

    # ------------------------------------------------------------------ UNLOAD / COPY engine hooks
    def on_unload(self, session: SessionInfo, query_text: str, path: str, rows: int, bytes: int,
                  file_format: str = "Text") -> int:
        """One stl_unload_log row per file written; returns the query id: the UNLOAD's own
        (``query_text``, the statement as sent), which every file of it shares, as on Redshift
        ("STL_UNLOAD_LOG": a row per file of a query), so a cluster with more slices logs more
        files, not more queries."""
        with self._lock:
            conn = self._c()
            query = self._running_query(conn, session, query_text)
            conn.execute(
                "insert into pg_sandbox.stl_unload_log (userid, query, slice, pid, path, start_time, end_time,"
                " line_count, transfer_size, file_format) values (%s, %s, 0, %s, %s, now() at time zone 'utc',"
                " clock_timestamp() at time zone 'utc', %s, %s, %s)",
                (self._userid(conn, session.user), query, session.pid, path, rows, bytes, file_format),
            )
            return query

    def on_load_commit(self, session: SessionInfo, table: str, files: Sequence[str] | Iterable[tuple[str, int]],
                       rows: int, query_text: str | None = None, file_format: str = "Text") -> int:
        """stl_load_commits rows (one per file) and the table's stl_insert row; returns the query id,
        the COPY's own (``query_text``, the statement as sent), which its load errors share.

        ``files`` holds URLs, or (URL, lines) pairs when per-file line counts are known.
        """
        pairs = [(f, -1) if isinstance(f, str) else (f[0], int(f[1])) for f in files]
        with self._lock:
            conn = self._c()
            query = self._running_query(conn, session, query_text or f"copy {table}")
            userid = self._userid(conn, session.user)
            for url, lines in pairs:
                conn.execute(
                    "insert into pg_sandbox.stl_load_commits (userid, query, slice, name, filename, byte_offset,"
                    " lines_scanned, errors, curtime, status, file_format, is_partial, start_offset, copy_job_id)"
                    " values (%s, %s, 0, %s, %s, 0, %s, 0, clock_timestamp() at time zone 'utc', 0, %s, 0, 0, 0)",
                    (userid, query, "streamed scan file", url,
                     lines if lines >= 0 else rows // max(len(pairs), 1), file_format),
                )
            self._write(conn, "stl_insert", userid, query, table, rows)
            return query

    def on_load_error(self, session: SessionInfo, table: str, line: int, column: str, reason: str, *,
                      filename: str = "", raw_line: str = "", raw_field_value: str = "", err_code: int = 1200,
                      col_type: str = "", query_text: str | None = None) -> int:
        """One stl_load_errors row under the COPY's query id (``query_text``, the statement as
        sent); returns it. The row stays aborted unless the COPY ends well (MAXERROR)."""
        with self._lock:
            conn = self._c()
            query = self._running_query(conn, session, query_text or f"copy {table}", aborted=True)
            conn.execute(
                "insert into pg_sandbox.stl_load_errors (userid, slice, tbl, starttime, session, query, filename,"
                " line_number, colname, type, col_length, position, raw_line, raw_field_value, err_code, err_reason,"
                " is_partial, start_offset, copy_job_id)"
                " values (%s, 0, coalesce(to_regclass(%s)::oid::int, 0), now() at time zone 'utc', %s, %s, %s, %s,"
                " %s, %s, '', 0, %s, %s, %s, %s, 0, 0, 0)",
                (self._userid(conn, session.user), table, session.pid, query, filename[:256], line,
                 column[:127], col_type[:10], raw_line[:1024], raw_field_value[:1024], err_code, reason[:100]),
            )
            return query


def _tag_count(tag: str) -> int:
    parts = tag.split()
    if parts and parts[-1].isdigit():
        return int(parts[-1])
    return 0
