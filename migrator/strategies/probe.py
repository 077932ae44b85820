"""Try every statement shape the migration will use on the source, on a tiny sample, before
anything changes; leave nothing behind.

No stand-in can promise how a given cluster answers a given statement (a type the tool never
saw, a catalog view a version lacks, a grant missing). The probe finds out in a minute:

- every catalog query the migration runs (inventory, validation baseline, access checks,
  object replay, load-error reads), each reported on its own;
- for the unload-copy route, per distinct tuple of column types in the inventory, one sampled
  row of the smallest non-empty table of that group goes the real way: UNLOAD (the real
  format, options and KMS key, to a probe prefix under the staging prefix) -> staging
  encryption check -> COPY (the real options) into a temporary table created with the real
  target's column definitions -> checksum of the sampled row on the source against the
  temporary table's. Then the temporary tables are dropped and the probe prefix is emptied,
  always (finally). Groups run on up to ``tables.concurrency`` sessions at once, as the copy
  phase's tables do (bench/probe.py measures what that saves).

The sample is ``ORDER BY <row hash> LIMIT 1`` inside a subquery: the same row for the UNLOAD
and for the checksum (a bare LIMIT 1 may pick another row each time), and Redshift refuses
LIMIT in an UNLOAD's outer SELECT. Nothing permanent is created: no user table, no bookkeeping
schema or marker table (the load's marker writes are not probed: they need a permanent table;
their CREATE/INSERT/DELETE are plain SQL on the target). This module never touches the store.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from migrator.aws import staging
from migrator.errors import MigratorError, RemoteError, ValidationMismatch
from migrator.retry import Backoff
from migrator.warehouse import baseline
from migrator.warehouse.checksum import exact_float_text, row_hash
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, physical_attributes, read_inventory
from migrator.warehouse.pipeline import (
    CSV,
    STAGE_TABLE,
    attach_load_errors,
    binary_stage,
    choose_format,
    marker_name,
    refuse_csv_marker_in_data,
    run_recorded,
    stage_statements,
)
from migrator.warehouse.replay.ddl import column_ddl
from migrator.warehouse.sql import (
    copy_sql,
    create_temp_table_sql,
    drop_temp_table_sql,
    fingerprint_over,
    freeze_sample_sql,
    frozen_sample_query,
    probe_prefix,
    query,
    quote_ident,
    sample_query,
    sampled,
    unload_query_over,
    unload_sql,
)

log = logging.getLogger("migrator.probe")

#: Statement shapes of the data path, in the order they run.
SHAPES = ("UNLOAD", "staging check", "CREATE TEMP TABLE", "COPY", "checksum", "cleanup")
TEMP_PREFIX = "migrator_probe_"


@dataclass(frozen=True)
class CatalogOutcome:
    """One catalog query: ``ok``, with a note (a fallback used), or failed with the error."""

    name: str
    used_for: str
    ok: bool
    detail: str = ""


@dataclass
class GroupOutcome:
    """One distinct tuple of column types, probed through one sampled row of ``table``."""

    table: str
    column_types: list[str]
    tables_in_group: int
    format: str = ""
    rows_sampled: int | None = None
    passed: list[str] = field(default_factory=list)  # shapes that worked, in order
    failed_shape: str | None = None
    detail: str = ""
    statement: str | None = None  # the failed UNLOAD/COPY, redacted
    cleanup_problems: list[str] = field(default_factory=list)
    #: How many times the group was tried; the transient failures that made it try again.
    attempts: int = 1
    retried_after: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_shape is None and not self.cleanup_problems

    def failure_lines(self) -> list[str]:
        types = ", ".join(self.column_types)
        lines = []
        if self.failed_shape:
            tries = f" (attempt {self.attempts}; each one failed transiently)" if self.attempts > 1 else ""
            lines.append(f"{self.failed_shape} failed on sample table {self.table} (column types: {types}): "
                         f"{self.detail}{tries}")
        lines += [f"cleanup after sample table {self.table}: {p}" for p in self.cleanup_problems]
        return lines


@dataclass
class ProbeReport:
    route: str
    catalog: list[CatalogOutcome] = field(default_factory=list)
    groups: list[GroupOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.catalog) and all(g.ok for g in self.groups)

    def failure_lines(self) -> list[str]:
        lines = [f"catalog query {c.name} ({c.used_for}) failed: {c.detail}" for c in self.catalog if not c.ok]
        for g in self.groups:
            lines += g.failure_lines()
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"route": self.route, "ok": self.ok, "catalog": [asdict(c) for c in self.catalog],
                "groups": [{**asdict(g), "ok": g.ok} for g in self.groups], "notes": list(self.notes),
                "failures": self.failure_lines()}


@dataclass(frozen=True)
class DataPath:
    """What the unload-copy route stages with (the config's [staging] and the migration's name)."""

    staging_uri: str
    migration: str
    iam_role_arn: str
    kms_key_id: str
    s3: Any
    kms: Any


# --------------------------------------------------------------------------- catalog queries

def _named(name: str, *params: Any) -> Callable[[Session], str]:
    def run(session: Session) -> str:
        session.run(query(name), list(params) if params else None, kind="catalog", what=f"catalog query {name}")
        return ""
    return run


def _optional(name: str, fallback: Callable[[Session], str] | None, without: str) -> Callable[[Session], str]:
    """A query the migration tries and does without (or replaces) when the catalog lacks it."""
    def run(session: Session) -> str:
        if session.try_run(query(name)) is not None:
            return ""
        if fallback is None:
            return f"not in this catalog; {without}"
        fallback(session)
        return f"not in this catalog; {without}"
    return run


def _tolerated(name: str, param: Any, meaning: str) -> Callable[[Session], str]:
    """A query whose failure the migration reads as an answer (access.py: not granted)."""
    def run(session: Session) -> str:
        try:
            session.run(query(name), [param] if param is not None else None, kind="catalog",
                        what=f"catalog query {name}")
        except MigratorError as exc:
            return f"fails here ({exc.message}); {meaning}"
        return ""
    return run


def _table_def_fallback(schemas: list[str]) -> Callable[[Session], str]:
    def run(session: Session) -> str:
        physical_attributes(session, set(schemas[:1]))
        return ""
    return run


def catalog_shapes(schemas: list[str], now: datetime) -> list[tuple[str, str, Callable[[Session], str]]]:
    """(name, what the migration reads it for, how to run it) for every catalog query."""
    since = (now - timedelta(days=30)).replace(tzinfo=None)
    return [
        ("user_tables", "inventory", _named("user_tables")),
        ("table_info", "inventory: sizes and rows", _named("table_info")),
        ("reldiststyle", "inventory: distribution style",
         _optional("reldiststyle", None, "the distribution style is read from svv_table_info")),
        ("backup_flags", "inventory: BACKUP NO", _optional("backup_flags", None, "BACKUP is reported as unknown")),
        ("table_columns", "inventory: columns", _named("table_columns")),
        ("redshift_columns", "inventory: encodings and keys",
         _optional("redshift_columns", _table_def_fallback(schemas), "read from pg_table_def per schema")),
        ("column_defaults", "inventory: defaults and IDENTITY",
         _optional("column_defaults", _named("column_defaults_pg"), "read with pg_get_expr")),
        ("scans_since", "inventory: unused tables", _named("scans_since", since)),
        ("last_writes", "inventory: last writes", _named("last_writes")),
        ("writes_since", "write freeze and writes during the copy", _named("writes_since", since)),
        ("baseline_tables", "validation: user tables", _baseline_tables),
        ("access_self", "access check", _named("access_self")),
        ("access_view_grant", "access check: grants on system views", _tolerated("access_view_grant", "svv_table_info", "the access check reads that as not granted")),
        ("access_syslog", "access check: SYSLOG ACCESS", _tolerated("access_syslog", None, "the access check reads that as restricted (superusers are not asked)")),
        ("access_unreadable_tables", "access check: unreadable tables", _named("access_unreadable_tables")),
        *((name, "object replay", _named(name)) for name in (
            "schemas", "users", "groups", "constraints", "views", "view_definitions", "view_dependencies",
            "late_binding_views", "materialized_views", "routines", "default_privileges", "external_schemas",
            "external_tables", "relations", "type_names")),
        ("load_errors", "COPY failure details", _named("load_errors", 1)),
        ("load_errors_session", "COPY failure details", _named("load_errors_session", 1)),
        ("bookkeeping_exists", "load markers (read only)",
         _named("bookkeeping_exists", marker_name("probe", "probe", "probe"))),
    ]


def _baseline_tables(session: Session) -> str:
    session.run(baseline.query("tables"), kind="catalog", what="validation: user tables")
    return ""


def probe_catalog(session: Session, *, include: list[str] | None, exclude: list[str] | None,
                  now: datetime | None = None) -> tuple[list[CatalogOutcome], list[TableInfo] | None]:
    """Every catalog query on its own (a failing one does not hide the others), then the
    inventory as the migration reads it (None when that fails). ``session`` is autocommit."""
    now = now or datetime.now(timezone.utc)
    outcomes: list[CatalogOutcome] = []
    schemas: list[str] = []
    try:
        schemas = sorted({str(r[0]) for r in session.run(query("user_tables"), kind="catalog")})
    except MigratorError:
        pass  # reported below as the user_tables shape
    for name, used_for, run in catalog_shapes(schemas, now):
        try:
            outcomes.append(CatalogOutcome(name, used_for, True, run(session)))
        except MigratorError as exc:
            outcomes.append(CatalogOutcome(name, used_for, False, exc.one_line()))
    tables: list[TableInfo] | None = None
    try:
        tables = read_inventory(session, include=include, exclude=exclude, now=now)
        outcomes.append(CatalogOutcome("inventory", "the inventory as the migration reads it", True))
    except MigratorError as exc:
        outcomes.append(CatalogOutcome("inventory", "the inventory as the migration reads it", False, exc.one_line()))
    return outcomes, tables


def probe_counts(session: Session, tables: list[TableInfo]) -> CatalogOutcome:
    """The validation's exact-count statement, over the sample tables."""
    try:
        session.run(baseline.exact_counts_sql([t.pair for t in tables]), kind="catalog", what="validation: row counts")
        return CatalogOutcome("baseline_counts", "validation: exact rows per table", True)
    except MigratorError as exc:
        return CatalogOutcome("baseline_counts", "validation: exact rows per table", False, exc.one_line())


# --------------------------------------------------------------------------- type groups

def column_signature(table: TableInfo) -> tuple[str, ...]:
    """The table's column types in order; IDENTITY changes the route (COPY EXPLICIT_IDS), so it
    is part of the signature."""
    out = []
    for c in table.columns:
        kind = ""
        if c.identity:
            kind = " generated by default as identity" if c.identity_by_default else " identity"
        out.append(c.type.strip().lower() + kind)
    return tuple(out)


@dataclass(frozen=True)
class TypeGroup:
    signature: tuple[str, ...]
    tables: tuple[TableInfo, ...]

    @property
    def sample(self) -> TableInfo:
        """The cheapest table that has rows (the sample's ORDER BY reads the whole table)."""
        with_rows = [t for t in self.tables if t.rows > 0] or list(self.tables)
        return min(with_rows, key=lambda t: (t.size_mb, t.rows, t.pair))


def type_groups(tables: list[TableInfo]) -> list[TypeGroup]:
    by_signature: dict[tuple[str, ...], list[TableInfo]] = {}
    for t in tables:
        by_signature.setdefault(column_signature(t), []).append(t)
    groups = [TypeGroup(sig, tuple(ts)) for sig, ts in by_signature.items()]
    return sorted(groups, key=lambda g: g.sample.pair)


# --------------------------------------------------------------------------- one sampled row

class _ShapeFailed(Exception):
    def __init__(self, shape: str, detail: str, statement: str | None = None, retryable: bool = False) -> None:
        super().__init__(detail)
        self.shape, self.detail, self.statement, self.retryable = shape, detail, statement, retryable


def _shape(outcome: GroupOutcome, shape: str, fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except _ShapeFailed:
        raise
    except MigratorError as exc:
        # OutcomeUnknown is not retryable: a statement that may still run is not sent again.
        raise _ShapeFailed(shape, exc.one_line(), getattr(exc, "statement", None), exc.retryable) from None
    outcome.passed.append(shape)
    return result


#: A transient failure (S3 throttling inside UNLOAD, a reset connection to S3, error 1023) says
#: nothing about whether the shape works: the group is tried again from a clean slate.
PROBE_BACKOFF = Backoff(base=1.0, cap=20.0, max_attempts=4)


def probe_group(session: Session, group: TypeGroup, path: DataPath, number: int,
                backoff: Backoff = PROBE_BACKOFF, sleep: Callable[[float], None] = time.sleep) -> GroupOutcome:
    """One sampled row of the group's sample table the real way; the temporary tables are
    dropped and the probe prefix emptied whatever happened. A transient failure is retried
    (with backoff, each attempt after a cleanup) up to ``backoff.max_attempts``."""
    info = group.sample
    temp = f"{TEMP_PREFIX}{number}"
    prefix = probe_prefix(path.staging_uri, path.migration, info.schema, info.name)
    attempt, retried_after = 0, []
    while True:
        attempt += 1
        outcome = GroupOutcome(info.ref, list(group.signature), len(group.tables), attempts=attempt,
                               retried_after=list(retried_after))
        retry = False
        try:
            _sample_through(session, info, path, prefix, temp, outcome)
        except _ShapeFailed as failed:
            outcome.failed_shape, outcome.detail, outcome.statement = failed.shape, failed.detail, failed.statement
            retry = failed.retryable
        finally:
            outcome.cleanup_problems = _clean(session, path, prefix, temp)
        if not retry or attempt >= backoff.max_attempts or session.lost or outcome.cleanup_problems:
            return outcome
        retried_after.append(f"{outcome.failed_shape}: {outcome.detail}")
        pause = backoff.delay(attempt)
        log.warning("probe of %s: %s failed transiently (%s); attempt %d/%d in %.1fs", info.ref,
                    outcome.failed_shape, outcome.detail, attempt + 1, backoff.max_attempts, pause)
        sleep(pause)


def frozen_sample_name(temp: str) -> str:
    return f"{temp}_sample"


def _sample_through(session: Session, info: TableInfo, path: DataPath, prefix: str, temp: str,
                    outcome: GroupOutcome) -> None:
    fmt = choose_format(info.columns)
    outcome.format = fmt.name
    names = [c.name for c in info.columns]
    hashed = row_hash(info.columns)
    frozen = frozen_sample_name(temp)
    sample = frozen_sample_query(frozen, names)
    unload = unload_sql(unload_query_over(sample, [(c.name, c.type) for c in info.columns], fmt.name,
                                          binary_stage(fmt, info.columns) is not None), prefix,
                        iam_role_arn=path.iam_role_arn, kms_key_id=path.kms_key_id, fmt=fmt.name)

    def run_unload() -> int:
        if fmt.name == CSV:
            refuse_csv_marker_in_data(session, info.schema, info.name, info.columns)
        exact_float_text(session)  # as unload_table: every digit of REAL/DOUBLE, and the same row hash
        session.run(freeze_sample_sql(frozen, sample_query(info.schema, info.name, names, hashed)), kind="load",
                    what=f"probe sample of {info.ref}")
        run_recorded(session, unload, kind="unload", what=f"probe UNLOAD {info.ref}", on_statement=None)
        return int(session.run("select pg_last_unload_count()", kind="unload")[0][0])

    rows = _shape(outcome, "UNLOAD", run_unload)
    outcome.rows_sampled = rows
    manifest = prefix + "manifest"
    _shape(outcome, "staging check", lambda: staging.verify_staging(
        path.s3, path.kms, manifest, kms_key_id=path.kms_key_id, expected_rows=rows))
    _shape(outcome, "CREATE TEMP TABLE",
           lambda: session.run(create_temp_table_sql(temp, column_ddl(info)), kind="load", what="probe temp table"))
    _shape(outcome, "COPY", lambda: _copy(session, info, fmt, manifest, path, temp, rows))
    _shape(outcome, "checksum", lambda: _compare(session, info, sample, hashed, temp))


def _copy(session: Session, info: TableInfo, fmt: Any, manifest: str, path: DataPath, temp: str,
          expected: int) -> None:
    """The load's COPY (load_exactly_once's choice of a straight COPY or one through the
    VARBYTE stage), into the temporary table."""
    staged = binary_stage(fmt, info.columns)
    into = temp if staged is None else STAGE_TABLE
    copy = copy_sql("", into, manifest, iam_role_arn=path.iam_role_arn, fmt=fmt.name,
                    explicit_ids=bool(info.identity_columns) and staged is None, temporary=True)
    if staged is not None:
        create_stage, insert_from_stage, drop_stage = stage_statements(quote_ident(temp), staged, fmt.name)
        session.run(create_stage, kind="load", what="probe stage")
    try:
        run_recorded(session, copy, kind="copy", what=f"probe COPY {info.ref}", on_statement=None)
    except MigratorError as exc:
        raise attach_load_errors(exc, session) from None
    loaded = int(session.run("select pg_last_copy_count()", kind="copy")[0][0])
    if loaded != expected:
        raise RemoteError(f"COPY loaded {loaded} rows, the UNLOAD wrote {expected}")
    if staged is not None:
        session.run(insert_from_stage, kind="load", what="probe insert from stage")
        session.run(drop_stage, kind="load", what="drop probe stage")


def _compare(session: Session, info: TableInfo, sample: str, hashed: str, temp: str) -> None:
    exact_float_text(session)
    source = session.run(fingerprint_over(sampled(sample), hashed), kind="validate", what=f"probe checksum {info.ref}")
    copied = session.run(fingerprint_over(quote_ident(temp), hashed), kind="validate", what="probe checksum copy")
    src, dst = (int(source[0][0]), str(source[0][1])), (int(copied[0][0]), str(copied[0][1]))
    if src != dst:
        raise ValidationMismatch(f"the sampled row's checksum differs: source rows={src[0]} checksum={src[1]}, "
                                 f"copied rows={dst[0]} checksum={dst[1]}")


def _clean(session: Session, path: DataPath, prefix: str, temp: str) -> list[str]:
    """Drop the temporary tables and empty the probe prefix; each problem is reported, none raised.
    A session whose connection was lost took its temporary tables with it: nothing to drop there."""
    problems = []
    for name in () if session.lost else (temp, STAGE_TABLE, frozen_sample_name(temp)):
        try:
            session.run(drop_temp_table_sql(name), kind="load", what="drop probe temp table")
        except MigratorError as exc:
            problems.append(f"could not drop temporary table {name} (it goes with the session): {exc.one_line()}")
    try:
        staging.cleanup_prefix(path.s3, prefix)
    except MigratorError as exc:
        problems.append(f"could not empty {prefix}: {exc.one_line()}; remove it by hand")
    return problems


# --------------------------------------------------------------------------- the whole probe

def run_probe(session: Session, *, route: str, stages_rows: bool, include: list[str] | None = None,
              exclude: list[str] | None = None, data_path: DataPath | None = None,
              now: datetime | None = None, open_session: Callable[[], Session] | None = None,
              workers: int = 1) -> ProbeReport:
    """Catalog queries, then (only for a route that ``stages_rows`` through UNLOAD/COPY, such as
    unload-copy) one sampled row per type group. ``session`` is an autocommit session on the
    source; nothing it creates outlives the probe.

    Type groups are probed by up to ``workers`` sessions at once: ``session`` and as many more
    as ``open_session`` gives (each autocommit; the caller closes them). On a
    real cluster every group costs an UNLOAD and a COPY of seconds each; one after another, a
    cluster with dozens of column-type sets would hold the preflight for many minutes."""
    if not session.conn.autocommit:
        raise ValueError("the probe needs an autocommit session")
    report = ProbeReport(route)
    report.catalog, tables = probe_catalog(session, include=include, exclude=exclude, now=now)
    if not stages_rows:
        report.notes.append(f"the {route} route moves no rows through UNLOAD/COPY: only its catalog queries "
                            "were probed")
        return report
    if tables is None:
        report.notes.append("the inventory could not be read: no type group was probed")
        return report
    if not tables:
        report.notes.append("no user table matches the configured patterns: no type group to probe")
        return report
    if data_path is None:
        raise ValueError("the unload-copy route needs its staging settings (DataPath)")
    groups = type_groups(tables)
    report.catalog.append(probe_counts(session, [g.sample for g in groups]))
    outcomes, sessions, notes = _probe_groups(session, groups, data_path,
                                              open_session if workers > 1 else None, min(workers, len(groups)))
    report.groups = outcomes
    report.notes += notes
    report.notes.append(f"{len(groups)} type group(s) over {len(tables)} table(s), one sampled row each, "
                        f"by {sessions} session(s)")
    return report


def _probe_groups(session: Session, groups: list[TypeGroup], path: DataPath,
                  open_session: Callable[[], Session] | None,
                  workers: int) -> tuple[list[GroupOutcome], int, list[str]]:
    """Each group once, by whichever session is free: the outcomes in group order, and how many
    sessions probed. A session whose connection died stops taking groups; the groups nobody
    could take are counted in a note."""
    pending: queue.SimpleQueue[tuple[int, TypeGroup]] = queue.SimpleQueue()
    for number, group in enumerate(groups, start=1):
        pending.put((number, group))
    done: dict[int, GroupOutcome] = {}
    used: set[int] = set()
    notes: list[str] = []
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def drain(own: Session) -> None:
        while not own.lost:
            try:
                number, group = pending.get_nowait()
            except queue.Empty:
                return
            outcome = probe_group(own, group, path=path, number=number)
            with lock:
                done[number] = outcome
                used.add(id(own))

    def extra_worker() -> None:
        assert open_session is not None
        try:
            own = open_session()
        except MigratorError as exc:
            note = f"a further probe session could not be opened ({exc.one_line()}): fewer groups ran at once"
            with lock:
                if note not in notes:  # every helper meets the same refusal: said once
                    notes.append(note)
            return
        try:
            drain(own)
        except BaseException as exc:  # a defect, not a failed shape: raised again by the caller's thread
            with lock:
                crashed.append(exc)

    helpers = [threading.Thread(target=extra_worker, name=f"probe-{i}", daemon=True)
               for i in range(1, workers)] if open_session is not None else []
    for helper in helpers:
        helper.start()
    try:
        drain(session)
    finally:
        for helper in helpers:
            helper.join()
    if crashed:
        raise crashed[0]
    left = len(groups) - len(done)
    if left:
        notes.append(f"the connection to the source was lost: {left} type group(s) were not probed")
    return [done[n] for n in sorted(done)], len(used), notes
