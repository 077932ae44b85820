"""The table data plane of the unload-copy route: each copy worker's sessions, and the table
steps the engine's table walker runs (unload, load, validate) with their own step registry.
Failures are recorded in history before they count; staged files go once a table is proven.
Table parts have their steps in part_steps.py."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws import staging
from migrator.config import LoadedConfig
from migrator.engine.registry import Registry
from migrator.engine.tables import StepContext, StepResult
from migrator.errors import MigratorError, OutcomeUnknown, RemoteError, TransientError
from migrator.retry import Backoff, with_retries
from migrator.store import ExtraEvent, TableView
from migrator.strategies.recorded import clients, clients_for
from migrator.strategies import window
from migrator.strategies.part_steps import after_last_part as _after_last_part
from migrator.strategies.part_steps import may_have_parts, migration_has_parts
from migrator.strategies.part_steps import parts_totals as _parts_totals
from migrator.strategies.part_steps import split as _split
from migrator.strategies.sessions import inventory_of, session
from migrator.strategies.step_records import recording_failures as _recording_failures
from migrator.warehouse import checksum, pipeline
from migrator.warehouse import parts as wparts
from migrator.warehouse.connection import Session, end_backend
from migrator.warehouse.inventory import TableInfo, column_defaults
from migrator.warehouse.pipeline import StatementHook
from migrator.warehouse.sql import CSV, redact, staging_prefix

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger(__name__)
#: The table steps, registered apart from the route's phase actions (unload_copy.registry joins them).
STEPS = Registry()
STEP_BACKOFF = Backoff(base=1.0, cap=20.0, max_attempts=4)


class TableWorker:
    """One copy worker's resources: its own source and target sessions (replaced when a
    connection is lost), the source inventory, the staging settings and AWS clients."""

    def __init__(self, ctx: "PhaseContext") -> None:
        self.ctx = ctx
        settings = ctx.config.settings
        assert settings.staging is not None
        self.staging = settings.staging
        self.clients = clients(ctx)
        self._sessions = _Sessions(ctx)
        self.tables: dict[tuple[str, str], TableInfo] = {}
        self._slices: tuple[int, int] | None = None
        self._marker: str | None = None
        #: Statements recorded in history with the move that started their step (announce_*):
        #: the step's recorder does not record them again when they run.
        self.announced: set[str] = set()
        self._defaults: dict[tuple[str, str, str], str] | None = None

    def __enter__(self) -> "TableWorker":
        self._sessions.__enter__()  # the target opens meanwhile, in a thread of its own
        try:
            self.tables = inventory_of(self.ctx, self._sessions.source)
            # Read now, not first inside a pick's store transaction (announce_unload asks it there).
            migration_has_parts(self.ctx)
            self._sessions.ready()
        except BaseException:
            self._sessions.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._sessions.__exit__(*exc)

    @property
    def source(self) -> Session:
        return self._sessions.source

    def slices(self) -> tuple[int, int]:
        """(source slices, target slices), read once per worker from STV_SLICES."""
        if self._slices is None:
            self._slices = (wparts.slice_count(self.source), wparts.slice_count(self.target))
        return self._slices

    @property
    def target(self) -> Session:
        return self._sessions.target

    def marker(self) -> str:
        """This worker's load marker table (pipeline.ensure_worker_marker), created before its
        first load: one CREATE per worker instead of one per table."""
        if self._marker is None:
            worker = f"{self.ctx.store.owner_label()}/{uuid.uuid4().hex}"
            self._marker = pipeline.ensure_worker_marker(self.target, self.ctx.migration.name, worker)
        return self._marker

    def identity_defaults(self, schema: str, table: str) -> dict[tuple[str, str, str], str]:
        """The target's column defaults (IDENTITY seeds), read once per worker and again only when
        a table is not in them (created since), instead of once per loaded table."""
        if self._defaults is None or not any((s, t) == (schema, table) for s, t, _c in self._defaults):
            self._defaults = column_defaults(self.target)
        return self._defaults

    def info(self, task: TableView) -> TableInfo:
        found = self.tables.get((task.schema_name, task.table_name))
        if found is None:
            raise RemoteError(f"{task.qualified_name} no longer exists on the source")
        return found

    def retried(self, what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Retry transient failures; a lost connection is replaced before the next attempt."""
        def attempt() -> dict[str, Any]:
            try:
                return fn()
            except MigratorError as exc:
                if exc.retryable:
                    self._sessions.reconnect()
                raise
        return with_retries(attempt, what=what, backoff=STEP_BACKOFF)

    @contextmanager
    def unloading(self) -> Iterator[None]:
        """Around an UNLOAD: a connection lost with it in flight ends the first one (an UNLOAD
        only writes staging, and running it again with CLEANPATH replaces whatever it wrote),
        then asks for a retry."""
        try:
            yield
        except OutcomeUnknown as exc:
            self.end_lost_statement("source", exc)
            raise TransientError(f"{exc.message}; the first UNLOAD was ended, running it again") from None

    def verify_staging(self, manifest_url: str, expected_rows: int | None) -> staging.StagingReport:
        """The staged files of ``manifest_url``: all there, SSE-KMS under the staging key, rows as expected."""
        return staging.verify_staging(self.clients.client("s3"), self.clients.client("kms"), manifest_url,
                                      kms_key_id=self.staging.kms_key_id, expected_rows=expected_rows)

    def end_lost_statement(self, which: str, exc: OutcomeUnknown) -> None:
        """After a connection died with a write in flight: new sessions, then make sure the
        first statement is over (its server process ended, its transaction rolled back) before
        anything reads its outcome or runs it again."""
        self._sessions.reconnect()
        if exc.backend_pid is not None:
            ended = end_backend(self.source if which == "source" else self.target, exc.backend_pid)
            log.info("%s: ended server process %s of the lost connection: %s", which, exc.backend_pid,
                     "it was still running" if ended else "it had already ended")
            if not self.target.conn.autocommit:
                self.target.rollback()


class _Sessions:
    """A worker's source and target sessions, replaceable when lost. Both in autocommit: reads
    (checksums, catalogue) then open no transaction (no BEGIN and ROLLBACK around each); a load
    runs in a transaction of its own all the same (pipeline.load_exactly_once).

    The two open at the same time: the target in a thread of its own while this one opens the
    source (and the worker reads the inventory through it), each mostly waiting on its cluster
    (endpoint, connection, session settings). `ready()` waits for the target, so a target that
    cannot be reached fails the worker's set-up as before, never a table's step."""

    def __init__(self, ctx: "PhaseContext") -> None:
        self.ctx = ctx
        self._stack: list[Any] = []
        self._opening: _Opening | None = None
        self.source: Session

    def __enter__(self) -> "_Sessions":
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _open(self) -> None:
        self._opening = _Opening(lambda: session(self.ctx, "target"))
        source_cm = session(self.ctx, "source")
        try:
            self.source = source_cm.__enter__()
        except BaseException:
            self._close()
            raise
        self._stack.append(source_cm)

    def ready(self) -> None:
        """Wait for the target session; its opening's error, if it failed."""
        assert self._opening is not None, "sessions not open"
        self._opening.result()

    @property
    def target(self) -> Session:
        assert self._opening is not None, "sessions not open"
        return self._opening.result()

    def _close(self) -> None:
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.close()
        while self._stack:
            try:
                self._stack.pop().__exit__(None, None, None)
            except Exception:  # a dead connection may refuse to close politely
                pass

    def reconnect(self) -> None:
        self._close()
        self._open()
        self.ready()


class _Opening:
    """A session being opened in a thread of its own (started at once); ``result()`` waits for it."""

    def __init__(self, open_session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._cm: AbstractContextManager[Session] | None = None
        self._session: Session | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(open_session,), daemon=True,
                                        name=f"{threading.current_thread().name}-target")
        self._thread.start()

    def _run(self, open_session: Callable[[], AbstractContextManager[Session]]) -> None:
        try:
            cm = open_session()
            self._session = cm.__enter__()
            self._cm = cm
        except BaseException as exc:  # handed to whoever waits for the session
            self._error = exc

    def result(self) -> Session:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def close(self) -> None:
        """Close the session once it is open (or wait for its opening to fail)."""
        self._thread.join()
        if self._cm is not None:
            cm, self._cm = self._cm, None
            try:
                cm.__exit__(None, None, None)
            except Exception:  # a dead connection may refuse to close politely
                pass


Step = StepContext[TableWorker]


def _statement_recorder(step: Step) -> StatementHook:
    """History gets every UNLOAD and COPY (already redacted by the pipeline) before it runs: with
    the move that started the step when it was announced there, else in a transaction of its own."""
    def record(kind: str, sql: str) -> None:
        if sql in step.resources.announced:
            step.resources.announced.discard(sql)  # a retry of it is recorded again
            return
        step.phase.store.add_event(step.phase.migration, step.task.subject, "statement",
                                   {"kind": kind, "statement": sql, "attempt": step.task.attempt},
                                   state=step.phase.migration.phase)
    return record


def _writing_step(step: Step, what: str, work: Callable[[], dict[str, Any]], *, then: str) -> StepResult:
    """The tail of a step that writes (UNLOAD, COPY): ``work`` retried with its failures in
    history, then the failpoint named ``then`` once it has succeeded."""
    fields = step.resources.retried(f"{what} {step.task.qualified_name}", _recording_failures(step, work))
    failpoints.hit(then)
    return StepResult(fields)


def _clean_earlier_attempts(step: Step, info: TableInfo) -> None:
    """Staged files of this table's failed attempts go before a new attempt (unless staging.keep);
    the current attempt's prefix is replaced by UNLOAD's CLEANPATH."""
    worker, task = step.resources, step.task
    if worker.staging.keep:
        return
    s3 = worker.clients.client("s3")
    for earlier in range(1, task.attempt):  # attempts count from 1
        prefix = staging_prefix(worker.staging.s3_uri, step.phase.migration.name, info.schema, info.name, earlier)
        removed = staging.cleanup_prefix(s3, prefix)
        if removed:
            log.info("%s: removed %d staged file(s) of failed attempt %d", task.qualified_name, removed, earlier)


def _timing(task: TableView, step: str, started: float) -> dict[str, Any]:
    timings = dict(task.step_timings or {})
    timings[step] = {"started": started, "seconds": round(time.time() - started, 3)}
    return timings


def _announced(step: Step, kind: str, statement: str) -> list[ExtraEvent]:
    recorded = redact(statement)
    step.resources.announced = {recorded}  # one at a time: a step that did not run its statement leaves no other
    return [ExtraEvent("statement", {"kind": kind, "statement": recorded, "attempt": step.task.attempt},
                       step.phase.migration.phase)]


def announce_unload(step: Step) -> list[ExtraEvent]:
    """The UNLOAD a whole table's unload step runs first, recorded with the move that starts it
    (a table that may be split, or goes through CSV, which checks its data first, records as it runs)."""
    worker, task = step.resources, step.task
    info = worker.tables.get(task.pair)
    if info is None or may_have_parts(step.phase, task):
        return []
    fmt = pipeline.choose_format(info.columns)
    if fmt.name == CSV:
        return []
    return _announced(step, "unload", pipeline.unload_statement(
        info.schema, info.name, info.columns, staging_uri=worker.staging.s3_uri, migration=step.phase.migration.name,
        attempt=task.attempt, iam_role_arn=worker.staging.iam_role_arn, kms_key_id=worker.staging.kms_key_id, fmt=fmt))


def announce_load(step: Step) -> list[ExtraEvent]:
    """The COPY the load step runs, recorded with the move that starts it."""
    worker, task = step.resources, step.task
    info = worker.tables.get(task.pair)
    if info is None or not task.manifest_url:
        return []
    statement = pipeline.load_copy_statement(info.schema, info.name, manifest_url=task.manifest_url,
                                             fmt=pipeline.choose_format(info.columns),
                                             iam_role_arn=worker.staging.iam_role_arn,
                                             explicit_ids=bool(info.identity_columns), columns=info.columns)
    return [] if statement is None else _announced(step, "copy", statement)


@STEPS.step("unload")
def unload_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)
    split = _split(step, info)
    if split is not None:
        return split
    _clean_earlier_attempts(step, info)
    on_statement = _statement_recorder(step)

    def unload() -> dict[str, Any]:
        started = time.time()
        with worker.unloading():
            result = pipeline.unload_table(worker.source, info.schema, info.name, info.columns,
                                           staging_uri=worker.staging.s3_uri, migration=step.phase.migration.name,
                                           attempt=task.attempt, iam_role_arn=worker.staging.iam_role_arn,
                                           kms_key_id=worker.staging.kms_key_id, on_statement=on_statement,
                                           count_rows=False)
        # The rows unloaded: the manifest's count (no pg_last_unload_count() round trip), which
        # the files' own counts must add up to; the load checks COPY's count against it.
        report = worker.verify_staging(result.manifest_url, expected_rows=None)
        return {"manifest_url": result.manifest_url, "staging_prefix": result.prefix,
                "unload_format": result.format.name, "format_reason": result.format.reason,
                "rows_unloaded": report.rows, "bytes_unloaded": report.bytes,
                "step_timings": _timing(task, "unload", started)}

    return _writing_step(step, "unload", unload, then="after_unload")


unload_step.announce = announce_unload  # type: ignore[attr-defined]


@STEPS.step("load")
def load_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)
    on_statement = _statement_recorder(step)
    migration = step.phase.migration.name

    def load() -> dict[str, Any]:
        started = time.time()
        assert task.manifest_url and task.unload_format
        fmt = pipeline.choose_format(info.columns)
        report = worker.verify_staging(task.manifest_url, expected_rows=task.rows_unloaded or 0)
        try:
            result = pipeline.load_exactly_once(worker.target, info.schema, info.name, manifest_url=task.manifest_url,
                                                fmt=fmt, iam_role_arn=worker.staging.iam_role_arn,
                                                migration=migration, attempt=task.attempt,
                                                explicit_ids=bool(info.identity_columns), expected_rows=report.rows,
                                                on_statement=on_statement, columns=info.columns,
                                                marker=worker.marker(), known_empty=task.attempt == 1,
                                                identity_defaults=worker.identity_defaults(info.schema, info.name)
                                                if info.identity_columns else None)
        except OutcomeUnknown as exc:
            # The COMMIT's connection died: the load may have committed or may still be running.
            # End it first, then its marker (written in the load's own transaction) decides.
            worker.end_lost_statement("target", exc)
            state = pipeline.reconcile_load(worker.target, migration, info.schema, info.name, task.attempt)
            step.phase.store.add_event(step.phase.migration, task.subject, "load_reconciled",
                                       {"attempt": task.attempt, "committed": state.committed,
                                        "rows": state.rows if state.committed else None},
                                       state=step.phase.migration.phase)
            if state.committed:
                return {"rows_loaded": state.rows, "step_timings": _timing(task, "load", started)}
            raise TransientError(f"{exc.message}; the load did not commit (no marker), loading again") from None
        for warning in result.warnings:
            log.warning("%s", warning)
        if result.warnings:
            step.phase.store.add_event(step.phase.migration, task.subject, "load_warnings",
                                       {"warnings": result.warnings}, state=step.phase.migration.phase)
        return {"rows_loaded": result.rows, "step_timings": _timing(task, "load", started)}

    return _writing_step(step, "load", load, then="after_load_commit")


load_step.announce = announce_load  # type: ignore[attr-defined]


@STEPS.step("validate")
def validate_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)
    parts = step.phase.store.list_parts(task.id) if may_have_parts(step.phase, task) else []

    def compare() -> dict[str, Any]:
        if parts:
            return _parts_totals(step, info, parts)
        started = time.time()
        result = checksum.compare_table(worker.source, worker.target, info.schema, info.name, info.columns)
        return {"source_checksum": f"{result.source.rows}:{result.source.checksum}",
                "target_checksum": f"{result.target.rows}:{result.target.checksum}",
                "mismatch": result.describe(), "step_timings": _timing(task, "validate", started)}

    fields = worker.retried(f"validate {task.qualified_name}", compare)
    mismatch = fields.pop("mismatch", None)
    if parts and fields["source_checksum"] == fields["target_checksum"]:
        _after_last_part(step, info, len(parts))
    if fields["source_checksum"] != fields["target_checksum"]:
        unloaded_at = float(((task.step_timings or {}).get("unload") or {}).get("started") or 0)
        if unloaded_at and window.table_written_since(worker.source, info.schema, info.name, unloaded_at):
            # Production wrote to it after the UNLOAD began: a moved source, not a bad copy.
            live_copies = step.phase.config.settings.tables.live_copies
            frozen = "frozen" in step.phase.state_def.tags
            move = "source_moved" if frozen or task.attempt < live_copies else "defer"
            step.phase.store.add_event(step.phase.migration, task.subject, "source_moved",
                                       {"attempt": task.attempt, "then": move, "difference": mismatch},
                                       state=step.phase.migration.phase)
            return StepResult(fields, move=move)
        return StepResult(fields, problem=mismatch)
    if not worker.staging.keep and task.staging_prefix:
        # Staged files are only cleaned once the table is proven equal; a crash before the move
        # is recorded re-validates from the clusters, not from staging.
        staging.cleanup_prefix(worker.clients.client("s3"), task.staging_prefix)
    return StepResult(fields)


def remove_staged_files(config: LoadedConfig) -> int:
    """For rollback: every staged file of this migration (all tables, all attempts, the
    rehearsal) is removed unless staging.keep; returns how many. Idempotent."""
    settings = config.settings
    if settings.staging is None or settings.staging.keep:
        return 0
    s3 = clients_for(settings).client("s3")
    removed = 0
    for prefix in migration_prefixes(settings.staging.s3_uri, settings.migration.name):
        removed += staging.cleanup_prefix(s3, prefix)
    return removed


def migration_prefixes(staging_uri: str, migration: str) -> list[str]:
    """The prefixes this migration stages under: its own (tables) and the rehearsal's."""
    def migration_part(uri: str) -> str:  # <uri>/<migration>/<schema>.<table>/attempt-0/ -> <uri>/<migration>/
        return staging_prefix(uri, migration, "s", "t", 0).rstrip("/").rsplit("/", 2)[0] + "/"
    return [migration_part(staging_uri), migration_part(staging_uri.rstrip("/") + "/_rehearsal")]
