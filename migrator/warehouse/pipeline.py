"""One table through the unload-copy route: UNLOAD to a per-attempt prefix, load exactly
once with a marker, reconcile from the marker after a crash.

Staging verification (migrator.aws.staging), validation (checksum.py) and cleanup sit
between and after these steps; the strategy records each step before and after.

For the caller:
- ``on_statement(kind, sql)`` (unload_table, load_exactly_once) hears every UNLOAD and COPY,
  redacted, just before it runs: record it in history. A failed one is also on the error as
  ``exc.statement``.
- A failed COPY's error carries ``exc.load_errors`` (LoadErrorRow: file, line, column, type,
  reason, raw value truncated and scrubbed), the first one in its message.
- LoadResult.warnings: print them (IDENTITY values a later insert could repeat).
- Markers: a table part has a marker table of its own (marker_name); a whole table's load
  writes its marker row into its worker's marker table (worker_marker_name, created once per
  worker), so concurrent loads never write the same table (SERIALIZABLE error 1023) and a small
  table's load adds no CREATE and COMMIT of its own; reconcile_load looks in every worker's.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from migrator.errors import MigratorError, RemoteError
from migrator.names import table_key
from migrator.warehouse.checksum import FLOAT_DIGITS_SQL
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import ColumnInfo, column_defaults, parse_identity
from migrator.warehouse.replay.ddl import next_identity_seed
from migrator.warehouse.sql import (
    CSV,
    CSV_NULL_MARKER,
    PARQUET,
    TEXT,
    DataFormat,
    copy_sql,
    csv_marker_check,
    delete_where_sql,
    STAGE_EMPTY,
    qualified,
    query,
    quote_ident,
    redact,
    stage_flag,
    staging_prefix,
    unload_query,
    unload_sql,
)

BOOKKEEPING_SCHEMA = "migrator_bookkeeping"
log = logging.getLogger("migrator.warehouse")

# Column types Parquet cannot carry through UNLOAD -> COPY without loss (AWS docs: GEOMETRY/
# GEOGRAPHY and VARBYTE unload only to text/CSV; TIME/TIMETZ, INTERVAL and HLLSKETCH have no
# Parquet mapping COPY reads back; SUPER becomes Parquet JSON which COPY needs extra options for).
_NOT_PARQUET = ("time", "timetz", "time with", "time without", "geometry", "geography", "hllsketch",
                "interval", "super", "varbyte", "varbinary", "binary varying")
_BINARY = ("varbyte", "varbinary", "binary varying")
_TEXT_TYPES = ("char", "varchar", "character", "bpchar", "text", "nchar", "nvarchar")
_TEXT_ROUTE = "delimited text with ESCAPE and NULL AS '\\N' on both sides"


def choose_format(columns: list[ColumnInfo]) -> DataFormat:
    """Parquet unless a column's type cannot go through it. An IDENTITY column does not stop it:
    COPY from Parquet takes EXPLICIT_IDS ("COPY from columnar data formats")."""
    binary = [f"{c.name} ({c.type})" for c in columns if c.type.lower().startswith(_BINARY)]
    if binary:
        return DataFormat(CSV, "COPY loads " + ", ".join(binary) + " from CSV, Parquet or ORC only, and UNLOAD "
                          "writes it to text or CSV only; using CSV with a NULL AS marker checked absent from "
                          "the data")
    blocking = [f"{c.name} ({c.type})" for c in columns if c.type.lower().startswith(_NOT_PARQUET)]
    if blocking:
        return DataFormat(TEXT, "Parquet cannot carry " + ", ".join(blocking) + "; using " + _TEXT_ROUTE)
    return DataFormat(PARQUET, "every column type maps to Parquet")


#: Called with (kind, statement) just BEFORE each UNLOAD or COPY runs, the statement already
#: redacted (sql.redact): a caller records it in history, and it is recorded even when the
#: statement then fails or the process dies inside it.
StatementHook = Callable[[str, str], None]


@dataclass(frozen=True)
class UnloadResult:
    prefix: str
    manifest_url: str
    format: DataFormat
    sql: str  # as run (no secret: IAM_ROLE and a KMS key id only)
    rows: int | None  # pg_last_unload_count(); None when the caller reads the manifest's count instead
    seconds: float

    @property
    def recorded(self) -> str:
        """The statement for history (redacted)."""
        return redact(self.sql)


@dataclass(frozen=True)
class LoadResult:
    manifest_url: str
    attempt: int
    rows: int
    statements: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)  # for the run's output (see identity_reuse_warnings)

    @property
    def copy_statement(self) -> str:
        """The COPY as recorded for history (redacted)."""
        return redact(next(s for s in self.statements if s.startswith("COPY ")))


@dataclass(frozen=True)
class MarkerState:
    committed: bool
    attempt: int | None = None
    manifest: str | None = None
    rows: int | None = None
    loaded_at: datetime | None = None


def run_recorded(session: Session, statement: str, *, kind: str, what: str,
                 on_statement: StatementHook | None) -> list[tuple[Any, ...]]:
    """Run an UNLOAD/COPY: the hook hears of it first; a failure carries the redacted
    statement as ``exc.statement``."""
    recorded = redact(statement)
    if on_statement is not None:
        on_statement(kind, recorded)
    try:
        return session.run(statement, kind=kind, what=what)
    except MigratorError as exc:
        setattr(exc, "statement", recorded)
        raise


def unload_table(session: Session, schema: str, table: str, columns: list[ColumnInfo], *, staging_uri: str,
                 migration: str, attempt: int, iam_role_arn: str, kms_key_id: str,
                 fmt: DataFormat | None = None, on_statement: StatementHook | None = None,
                 count_rows: bool = True) -> UnloadResult:
    """UNLOAD the table to its own attempt prefix (CLEANPATH: a rerun replaces leftovers).

    Without ``count_rows`` no pg_last_unload_count() round trip: rows is None and the caller
    takes the count from the manifest, which the same UNLOAD writes (MANIFEST VERBOSE: the
    record_count of each file and of the whole unload, "UNLOAD" in the Database Developer Guide);
    CLEANPATH removed any earlier manifest under the prefix first, so the one read is this one's."""
    fmt = fmt or choose_format(columns)
    prefix = staging_prefix(staging_uri, migration, schema, table, attempt)
    statement = unload_statement(schema, table, columns, staging_uri=staging_uri, migration=migration,
                                 attempt=attempt, iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt)
    started = time.perf_counter()
    if fmt.name == CSV:
        _refuse_csv_marker_in_data(session, schema, table, columns)
    session.run(FLOAT_DIGITS_SQL, kind="unload")  # every digit of REAL/DOUBLE in text files
    run_recorded(session, statement, kind="unload", what=f"UNLOAD {table_key(schema, table)}",
                 on_statement=on_statement)
    if not count_rows:
        return UnloadResult(prefix, prefix + "manifest", fmt, statement, None, time.perf_counter() - started)
    rows = session.run("select pg_last_unload_count()", kind="unload")
    return UnloadResult(prefix, prefix + "manifest", fmt, statement, int(rows[0][0]) if rows else -1,
                        time.perf_counter() - started)


def unload_statement(schema: str, table: str, columns: list[ColumnInfo], *, staging_uri: str, migration: str,
                     attempt: int, iam_role_arn: str, kms_key_id: str, fmt: DataFormat) -> str:
    """The UNLOAD unload_table runs (known before it runs, so a caller can record it first)."""
    prefix = staging_prefix(staging_uri, migration, schema, table, attempt)
    return unload_sql(unload_query(schema, table, [(c.name, c.type) for c in columns], fmt.name,
                                   staged_route(fmt, columns)), prefix,
                      iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt.name)


def load_copy_statement(schema: str, table: str, *, manifest_url: str, fmt: DataFormat, iam_role_arn: str,
                        explicit_ids: bool, columns: list[ColumnInfo]) -> str | None:
    """The COPY load_exactly_once runs for a whole table, or None when it goes through a stage
    table (binary_stage), whose statements are recorded as they run."""
    if binary_stage(fmt, columns) is not None:
        return None
    return copy_sql(schema, table, manifest_url, iam_role_arn=iam_role_arn, fmt=fmt.name, explicit_ids=explicit_ids)


def refuse_csv_marker_in_data(session: Session, schema: str, table: str, columns: list[ColumnInfo]) -> None:
    """The check unload_table runs before a CSV UNLOAD (for the probe, which runs the same shapes)."""
    _refuse_csv_marker_in_data(session, schema, table, columns)


def _refuse_csv_marker_in_data(session: Session, schema: str, table: str, columns: list[ColumnInfo]) -> None:
    """CSV writes a string equal to its NULL AS text exactly as it writes NULL: refuse to unload
    a table holding CSV_NULL_MARKER as data rather than turn that value into NULL."""
    text_columns = [c.name for c in columns if c.type.strip().lower().startswith(_TEXT_TYPES)]
    check = csv_marker_check(schema, table, text_columns)
    if check is None:
        return
    found = int(session.run(check, [CSV_NULL_MARKER] * len(text_columns), kind="unload")[0][0])
    if found:
        raise RemoteError(f"{table_key(schema, table)}: {found} row(s) hold the text {CSV_NULL_MARKER!r}, which the "
                          "CSV route (needed for VARBYTE) uses as its NULL marker",
                          hint="change those values, or exclude the table and copy it by hand")


def marker_name(migration: str, schema: str, table: str, part: int | None = None) -> str:
    """The marker table of one load target: a digest of the (migration, schema, table) triple,
    so any names fit in 127 bytes and two targets never share a marker table. A table part is
    a load target of its own (its digest also covers the part number)."""
    key = (migration, schema, table) if part is None else (migration, schema, table, "part", str(int(part)))
    digest = hashlib.sha256("\x00".join(key).encode("utf-8")).hexdigest()[:32]
    return f"load_marker_{digest}"


def marker_sql(name: str, migration: str, schema: str, table: str, part: int | None = None) -> str:
    """A named marker query (bookkeeping, marker_delete/insert/read) for this load target."""
    return query(name).format(marker=qualified(BOOKKEEPING_SCHEMA, marker_name(migration, schema, table, part)))


def worker_marker_name(migration: str, worker: str) -> str:
    """A copy worker's marker table: a digest of (migration, worker), ``worker`` unique to the
    worker (its process and a random part), so two workers never share one."""
    digest = hashlib.sha256("\x00".join((migration, "worker", worker)).encode("utf-8")).hexdigest()[:32]
    return f"load_markers_{digest}"


def ensure_worker_marker(session: Session, migration: str, worker: str) -> str:
    """Create a worker's marker table (once per worker, before its first load); returns its
    qualified name. Committed on its own (autocommit, or a COMMIT), so load transactions write
    only their target and this table."""
    name = qualified(BOOKKEEPING_SCHEMA, worker_marker_name(migration, worker))
    session.run(query("bookkeeping").format(marker=name), kind="bookkeeping")
    if not session.conn.autocommit:
        session.commit()
    return name


#: How the marker insert (sql/marker_insert.sql) says the COPY before it loaded other than the
#: expected rows: its guard divides by zero (classify() puts the SQLSTATE in the message).
_COUNT_CHECK_FAILED = "[SQLSTATE 22012]"


def marker_writes(migration: str, schema: str, table: str, attempt: int, manifest_url: str,
                  rows: int, part: int | None = None) -> list[tuple[str, list[Any]]]:
    """The statements that record a load, run inside the load's own transaction. They touch
    only this target's marker table: concurrent loads of other tables write other tables.
    ``rows``: what the session's last COPY must have loaded, or the insert fails (marker_insert.sql)."""
    key = [migration, schema, table]
    return [(marker_sql("marker_delete", *key, part=part), key),
            (marker_sql("marker_insert", *key, part=part), key + [attempt, manifest_url, rows])]


def ensure_bookkeeping(session: Session) -> list[str]:
    """Create the marker schema if missing (autocommit session); returns statements run. A copy
    worker creates its marker table there once (ensure_worker_marker); a table part's load, its own
    (ensure_marker)."""
    statement = f"create schema if not exists {quote_ident(BOOKKEEPING_SCHEMA)}"
    if int(session.run("select count(*) from pg_namespace where nspname = %s", [BOOKKEEPING_SCHEMA],
                       kind="bookkeeping")[0][0]):
        return []
    session.run(statement, kind="bookkeeping")
    return [statement]


def ensure_marker(session: Session, migration: str, schema: str, table: str, part: int | None = None) -> str:
    """Create this target's marker table if missing, committed on its own before the load's
    transaction (so the load transaction writes only the target and its marker)."""
    statement = marker_sql("bookkeeping", migration, schema, table, part)
    session.run(statement, kind="bookkeeping")
    if not session.conn.autocommit:
        session.commit()
    return statement


#: The load's own temporary table, when the rows go through one (see binary_stage).
STAGE_TABLE = "migrator_load_stage"
#: Hex text of a VARBYTE fits a VARCHAR of at most this many characters.
def binary_stage(fmt: DataFormat, columns: list[ColumnInfo] | None) -> list[ColumnInfo] | None:
    """The columns to stage through a temporary table, or None to COPY straight into the target.

    A table with a column that carries a flag on this route (sql.stage_flag: VARBYTE on CSV, whose
    empty value COPY would load as NULL; SUPER on text/CSV, unloaded as itself with no VARCHAR
    limit, whose SQL NULL UNLOAD writes as JSON null) is copied into the stage and inserted from
    it with the flags applied. Not possible when the table has an IDENTITY column that refuses
    explicit values outside COPY EXPLICIT_IDS (GENERATED BY DEFAULT accepts them)."""
    if not columns or not any(stage_flag(c.type, fmt.name) for c in columns):
        return None
    if any(c.identity and not c.identity_by_default for c in columns):
        return None
    return columns


def staged_route(fmt: DataFormat, columns: list[ColumnInfo]) -> bool:
    """Whether this table's UNLOAD writes the stage's flag columns (binary_stage applies)."""
    return binary_stage(fmt, columns) is not None


def _stage_sql(schema: str, table: str, columns: list[ColumnInfo], fmt: str) -> tuple[str, str, str]:
    """CREATE TEMP TABLE (the value and its flag per flagged column), INSERT INTO the target
    from it with the flags applied, DROP it."""
    return stage_statements(qualified(schema, table), columns, fmt)


def stage_statements(into: str, columns: list[ColumnInfo], fmt: str) -> tuple[str, str, str]:
    """As _stage_sql, into an already quoted relation (the probe's temporary table has no schema).
    Stage columns are named by position (a source name may already be 127 bytes long)."""
    defs, items = [], []
    for i, c in enumerate(columns):
        col, flag_col = quote_ident(f"c{i}"), quote_ident(f"c{i}_flag")
        defs.append(f"{col} {c.type}")
        flag = stage_flag(c.type, fmt)
        if flag is None:
            items.append(col)
            continue
        defs.append(f"{flag_col} SMALLINT")
        if flag == STAGE_EMPTY:
            items.append(f"CASE WHEN {flag_col} = 1 THEN FROM_HEX('') ELSE {col} END")
        else:
            items.append(f"CASE WHEN {flag_col} = 1 THEN NULL ELSE {col} END")
    stage = quote_ident(STAGE_TABLE)
    names = ", ".join(quote_ident(c.name) for c in columns)
    return (f"CREATE TEMP TABLE {stage} ({', '.join(defs)})",
            f"INSERT INTO {into} ({names}) SELECT {', '.join(items)} FROM {stage}",
            f"DROP TABLE {stage}")


@contextmanager
def _transaction(session: Session) -> Iterator[None]:
    """The load's transaction on a session that may be in autocommit (a copy worker's target is,
    so its reads open no transaction): autocommit off for the load, back as it was after."""
    was = bool(session.conn.autocommit)
    if was:
        session.conn.autocommit = False
    try:
        yield
    finally:
        if was:
            session.conn.autocommit = True


def load_exactly_once(session: Session, schema: str, table: str, *, manifest_url: str, fmt: DataFormat,
                      iam_role_arn: str, migration: str, attempt: int, explicit_ids: bool,
                      expected_rows: int, columns: list[ColumnInfo],
                      on_statement: StatementHook | None = None, part: int | None = None,
                      where: tuple[str, list[Any]] | None = None, marker: str | None = None,
                      known_empty: bool = False,
                      identity_defaults: dict[tuple[str, str, str], str] | None = None) -> LoadResult:
    """In one target transaction: DELETE (not TRUNCATE, which commits), COPY, the marker row
    (whose insert fails unless the COPY loaded ``expected_rows``), COMMIT. Any failure rolls the whole thing back; the table is then as
    before and the load can simply run again. ``session`` must not be in autocommit; the
    marker table is created (and committed) first if missing. ``columns`` (the table's, in
    order) decide whether a CSV load of VARBYTE goes through a temporary table (binary_stage).
    A table part (``part`` with its range ``where``): the DELETE takes only the part's range and
    the marker is the part's own, so parts load (and reload) one by one, each exactly once.

    A whole table's load given ``marker`` (its worker's marker table, ensure_worker_marker)
    writes its marker row there: no marker table is created, nothing deleted from it (reconcile
    matches the attempt). ``known_empty``: the table holds no row of any committed load (the
    caller knows no earlier load of it committed: its first attempt), so no DELETE is sent. A
    session in autocommit runs the load in a transaction all the same (autocommit off meanwhile).
    ``identity_defaults`` (the target's column defaults, column_defaults(), read once by the
    caller) spare the identity check a catalogue read per table."""
    with _transaction(session):
        result = _load_exactly_once(session, schema, table, manifest_url=manifest_url, fmt=fmt,
                                  iam_role_arn=iam_role_arn, migration=migration, attempt=attempt,
                                  explicit_ids=explicit_ids, expected_rows=expected_rows, columns=columns,
                                  on_statement=on_statement, part=part, where=where, marker=marker,
                                  known_empty=known_empty and part is None and where is None)
    if explicit_ids:
        result = replace(result, warnings=identity_reuse_warnings(session, schema, table, identity_defaults))
    return result


def _load_exactly_once(session: Session, schema: str, table: str, *, manifest_url: str, fmt: DataFormat,
                       iam_role_arn: str, migration: str, attempt: int, explicit_ids: bool,
                       expected_rows: int, columns: list[ColumnInfo], on_statement: StatementHook | None,
                       part: int | None, where: tuple[str, list[Any]] | None, marker: str | None,
                       known_empty: bool) -> LoadResult:
    staged = binary_stage(fmt, columns)
    if staged is not None:
        create_stage, insert_from_stage, drop_stage = _stage_sql(schema, table, staged, fmt.name)
        copy = copy_sql("", STAGE_TABLE, manifest_url, iam_role_arn=iam_role_arn, fmt=fmt.name,
                        explicit_ids=False, temporary=True)
    else:
        copy = copy_sql(schema, table, manifest_url, iam_role_arn=iam_role_arn, fmt=fmt.name,
                        explicit_ids=explicit_ids)
    delete = f"DELETE FROM {qualified(schema, table)}" if where is None else delete_where_sql(schema, table, where[0])
    in_worker_marker = marker is not None and part is None
    statements = [f"-- marker row in {marker}" if in_worker_marker else ensure_marker(session, migration, schema,
                                                                                       table, part),
                  delete, copy]
    started = time.perf_counter()
    try:
        if not known_empty:
            session.run(statements[1], list(where[1]) if where else None, kind="load",
                        what=f"DELETE FROM {table_key(schema, table)}")
        if staged is not None:
            session.run(create_stage, kind="load", what=f"stage {table_key(schema, table)}")
        try:
            run_recorded(session, statements[2], kind="copy", what=f"COPY {table_key(schema, table)}",
                         on_statement=on_statement)
        except MigratorError as exc:
            session.rollback()
            raise attach_load_errors(exc, session) from None
        if staged is not None:
            session.run(insert_from_stage, kind="load", what=f"INSERT {table_key(schema, table)} from stage")
            session.run(drop_stage, kind="load", what="drop stage")
            statements += [create_stage, insert_from_stage, drop_stage]
        writes = marker_writes(migration, schema, table, attempt, manifest_url, expected_rows, part)
        if in_worker_marker:
            key = [migration, schema, table, attempt, manifest_url, expected_rows]
            writes = [(query("marker_insert").format(marker=marker), key)]
        for sql, params in writes:
            try:
                session.run(sql, params, kind="load")
            except MigratorError as exc:
                if _COUNT_CHECK_FAILED in exc.message:
                    raise RemoteError(f"COPY {table_key(schema, table)} loaded a number of rows other than the "
                                      f"{expected_rows} its UNLOAD wrote (pg_last_copy_count() checked by the "
                                      "marker insert)", hint="rolled back; the table will be loaded again") from None
                raise
            statements.append(sql)
        session.commit()
        loaded = expected_rows  # the marker insert committed only because the COPY loaded exactly these
    except BaseException:
        session.rollback()
        raise
    seconds = time.perf_counter() - started
    if known_empty:
        statements.remove(delete)
    return LoadResult(manifest_url, attempt, loaded, statements, seconds)


def reconcile_load(session: Session, migration: str, schema: str, table: str,
                   attempt: int | None = None, part: int | None = None) -> MarkerState:
    """After a crash with the table 'loading': did the load commit? The marker is written in the
    load's own transaction, so it exists exactly when the rows do. A whole table's marker is in
    one of the workers' marker tables (or its own, written before worker markers), all read in
    one statement."""
    if part is None and attempt is not None:
        return _reconcile_table(session, migration, schema, table, attempt)
    name = marker_name(migration, schema, table, part)
    exists = int(session.run(query("bookkeeping_exists"), [name], kind="bookkeeping")[0][0])
    rows = session.run(marker_sql("marker_read", migration, schema, table, part), [migration, schema, table],
                       kind="bookkeeping") if exists else []
    if not session.conn.autocommit:
        session.rollback()  # end the read-only transaction the driver opened
    for row in rows:
        if attempt is None or int(row[0]) == attempt:
            return MarkerState(True, int(row[0]), str(row[1]), int(row[2]), row[3])
    return MarkerState(False)


def _reconcile_table(session: Session, migration: str, schema: str, table: str, attempt: int) -> MarkerState:
    tables = [str(r[0]) for r in session.run(query("worker_markers"), [marker_name(migration, schema, table)],
                                             kind="bookkeeping")]
    rows: list[tuple[Any, ...]] = []
    if tables:
        one = query("marker_find")
        union = "\nunion all\n".join(one.format(marker=qualified(BOOKKEEPING_SCHEMA, t)) for t in tables)
        rows = session.run(union, [migration, schema, table, attempt] * len(tables), kind="bookkeeping")
    if not session.conn.autocommit:
        session.rollback()  # end the read-only transaction the driver opened
    for row in rows:
        return MarkerState(True, int(row[0]), str(row[1]), int(row[2]), row[3])
    return MarkerState(False)


def drop_bookkeeping(session: Session) -> list[str]:
    """At the end of the migration: remove the marker schema (and nothing else)."""
    statement = f"drop schema if exists {BOOKKEEPING_SCHEMA} cascade"
    session.run(statement, kind="bookkeeping")
    return [statement]


@dataclass(frozen=True)
class LoadErrorRow:
    """One row of stl_load_errors, made safe to print and store."""

    filename: str
    line: int
    column: str
    type: str
    reason: str
    raw_value: str  # truncated, secret-looking parts replaced

    def describe(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "") + \
            (f" ({self.type})" if self.type else "")
        return f"{where}: {self.reason}; value {self.raw_value!r}" + (f"; file {self.filename}" if self.filename else "")


LOAD_ERROR_ROWS = 5
RAW_VALUE_CHARS = 80
_SECRETS = [
    re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),  # secret-access-key shape
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
    re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|credentials?)\b\s*[=:]\s*\S+"),
    re.compile(r"(?i)-----BEGIN [A-Z ]*PRIVATE KEY-----.*", re.DOTALL),
]


def scrub(value: str, limit: int = RAW_VALUE_CHARS) -> str:
    """A raw value fit for errors, history and status: secret-looking parts replaced, then
    truncated (a marker says so)."""
    text = value
    for pattern in _SECRETS:
        text = pattern.sub("[redacted]", text)
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


def read_load_errors(session: Session, limit: int = LOAD_ERROR_ROWS) -> list[LoadErrorRow]:
    """The first rows of stl_load_errors for the session's last COPY (pg_last_copy_id(); if
    that names none, this session's latest failed load). A regular user sees its own loads'
    rows, which these are. Read in a transaction of its own, rolled back."""
    rows = session.run(query("load_errors"), [limit], kind="copy")
    if not rows:
        rows = session.run(query("load_errors_session"), [limit], kind="copy")
    if not session.conn.autocommit:
        session.rollback()
    return [LoadErrorRow(str(f or "").strip(), int(n or 0), str(c or "").strip(), str(t or "").strip(),
                         scrub(str(r or "").strip(), 200), scrub(str(v or "").strip()))
            for f, n, c, t, r, v in rows]


def attach_load_errors(exc: MigratorError, session: Session) -> MigratorError:
    """The COPY's error with ``load_errors`` (LoadErrorRow list) attached and the first row in
    its message. Reading the log must never hide the COPY's own error."""
    try:
        rows = read_load_errors(session)
    except Exception as read_error:  # noqa: BLE001 - the COPY's error is the one to raise
        log.warning("could not read stl_load_errors: %s", read_error)
        session.rollback()
        rows = []
    setattr(exc, "load_errors", rows)
    if rows:
        more = f" (and {len(rows) - 1} more in load_errors)" if len(rows) > 1 else ""
        exc.message = f"{exc.message}; first load error: {rows[0].describe()}{more}"
        exc.args = (exc.message,)
    return exc


def identity_reuse_warnings(session: Session, schema: str, table: str,
                            defaults: dict[tuple[str, str, str], str] | None = None) -> list[str]:
    """After loading explicit ids: can a row the target generates later repeat a loaded id?

    Redshift documents that explicit values (COPY EXPLICIT_IDS, or values given to a
    GENERATED BY DEFAULT column) never move the next generated value, which starts at the
    seed; the seed cannot be altered. Replay creates the table with its seed past the
    source's values (replay.ddl.next_identity_seed); rows written on the source after that can
    still reach it. No warning means generated values cannot meet a loaded one."""
    found = {c: src for (s, t, c), src in (defaults if defaults is not None else column_defaults(session)).items()
             if (s, t) == (schema, table)}
    out = []
    for column, adsrc in sorted(found.items()):
        identity = parse_identity(adsrc)
        if not identity:
            continue
        seed, step = identity
        col = quote_ident(column)
        low, high = session.run(f"select min({col}), max({col}) from {qualified(schema, table)}", kind="load")[0]
        reach = high if step > 0 else low
        if reach is not None and next_identity_seed(seed, step, low, high) != seed:
            out.append(f"{table_key(schema, table)}: IDENTITY column {column} holds loaded ids up to {reach}, "
                       f"past its seed {seed}: Redshift does not move the seed after COPY EXPLICIT_IDS, so new "
                       f"rows may repeat loaded ids; before new rows are written, recreate the table with seed "
                       f"{next_identity_seed(seed, step, low, high)} (CREATE TABLE ... IDENTITY, INSERT ... SELECT)")
    if not session.conn.autocommit:
        session.rollback()  # end the read-only transaction the driver opened
    return out


