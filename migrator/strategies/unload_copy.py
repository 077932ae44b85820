"""The unload/copy route: a new encrypted cluster, filled table by table through
KMS-encrypted S3 staging, validated, then swapped in by the shared cutover.

Every phase is idempotent: a resumed run re-enters the phase it was in and the
store (tables' states, recorded remote actions, load markers on the target)
tells it what is already done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator import failpoints
from migrator.aws import clusters as aws
from migrator.aws import staging
from migrator.config import ConnectionSection, LoadedConfig
from migrator.engine import tables as tables_engine
from migrator.engine.registry import Registry
from migrator.engine.tables import StepContext, StepResult
from migrator.errors import MigratorError, OutcomeUnknown, PreflightFailed, RemoteError, TransientError
from migrator.retry import Backoff, with_retries
from migrator.store import TableSpec, TableView
from migrator.strategies import common, cutover, stray_writes
from migrator.warehouse import checksum, pipeline
from migrator.warehouse.connection import Session, end_backend
from migrator.warehouse.inventory import TableInfo, read_inventory
from migrator.warehouse.pipeline import StatementHook
from migrator.warehouse.sql import staging_prefix, table_key

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext

log = logging.getLogger("migrator.unload_copy")
REGISTRY = Registry()
PREFLIGHT_KEY = "preflight"
PROVISION_KEY = "provision-target"
REHEARSAL_KEY = "rehearsal"
STEP_BACKOFF = Backoff(base=1.0, cap=20.0, max_attempts=4)


def registry() -> Registry:
    return REGISTRY


# -- sessions ---------------------------------------------------------------------------------

def target_section(config: LoadedConfig) -> ConnectionSection:
    return cutover.target_connection(config.settings, config.settings.target.cluster_id)


@contextmanager
def session(ctx_or_config: "PhaseContext | LoadedConfig", which: str, *, autocommit: bool = True
            ) -> Iterator[Session]:
    config = ctx_or_config if isinstance(ctx_or_config, LoadedConfig) else ctx_or_config.config
    settings = config.settings
    clients = common.clients_for(settings)
    if which == "source":
        conn = common.connect(settings, clients, settings.source.cluster_id)
    else:
        section = target_section(config)
        conn = common.connect(settings, clients, section.cluster_id, where="target", conn=section)
    conn.autocommit = autocommit
    try:
        yield Session(conn)
    finally:
        conn.close()


def inventory_of(ctx: "PhaseContext", source: Session) -> dict[tuple[str, str], TableInfo]:
    """The source's tables by their identity, the (schema, table) pair (never a joined text:
    ``"a.b"."c"`` and ``"a"."b.c"`` are two tables)."""
    t = ctx.config.settings.tables
    return {info.pair: info for info in read_inventory(source, include=t.include, exclude=t.exclude)}


# -- preflight --------------------------------------------------------------------------------

@REGISTRY.action("preflight")
def preflight(ctx: "PhaseContext") -> str:
    """Read-only: every problem is collected and reported together."""
    settings = ctx.config.settings
    clients = common.clients(ctx)
    region = settings.migration.region
    source, problems = common.source_problems(ctx, settings.source.cluster_id)
    target = aws.describe_cluster(clients, settings.target.cluster_id)
    ours = ctx.store.get_action(ctx.migration, PROVISION_KEY) is not None
    if target is not None and not ours:
        problems.append(f"target cluster id {settings.target.cluster_id} is already taken by a cluster this "
                        "migration did not create")
    if settings.target.encryption == "kms" and settings.target.kms_key_id:
        problems += aws.resolve_kms_key(clients, settings.target.kms_key_id, region)[1]
    if settings.target.encryption == "hsm":
        problems += _hsm_problems(clients, settings.target.hsm_client_certificate or "",
                                  settings.target.hsm_configuration or "")
    assert settings.staging is not None
    problems += aws.resolve_kms_key(clients, settings.staging.kms_key_id, region)[1]
    problems += _bucket_problems(clients, settings.staging.s3_uri, region)
    if source is not None:
        roles = {r.get("IamRoleArn") for r in source.get("IamRoles", [])}
        if settings.staging.iam_role_arn not in roles:
            problems.append(f"IAM role {settings.staging.iam_role_arn} is not attached to source cluster "
                            f"{settings.source.cluster_id} (UNLOAD needs it)")
    section = target_section(ctx.config)
    if not (section.password_env or section.secret_arn or section.iam_auth):
        problems.append("target: no credential source for the new cluster's master user "
                        "(set target.password_env or target.secret_arn)")
    problems += common.target_credentials_problems(ctx, section, creates_target=not ours)
    notes: list[str] = []
    if source is not None:
        mirror = common.mirror_source(source, settings, restore=False)
        problems += list(mirror.problems)
        notes = list(mirror.overridden) + list(mirror.reported) + common.rename_notes(clients, source)
    if source is not None and not problems:
        # Only once everything else holds: the probe writes (and removes) staged files and a
        # temporary table, which needs a reachable source, its role and a sound bucket.
        problems += common.probe_problems(ctx)
    common.fail_preflight(problems)
    assert source is not None  # fail_preflight raised otherwise
    ctx.store.add_event(ctx.migration, "migration", "not_mirrored", {"notes": notes}, state=ctx.migration.phase)
    ctx.facts["detail"] = {"notes": notes}
    copy = aws.snapshot_copy_of(source)
    common.remember(ctx, PREFLIGHT_KEY, {"source": common.cluster_summary(source),
                                         "snapshot_copy": copy.to_dict() if copy else None})
    return "preflight_passed"


def _hsm_problems(clients: Any, certificate: str, configuration: str) -> list[str]:
    redshift = clients.client("redshift")
    problems = []
    for what, fn, key in (("HSM client certificate", redshift.describe_hsm_client_certificates,
                           "HsmClientCertificateIdentifier"),
                          ("HSM configuration", redshift.describe_hsm_configurations, "HsmConfigurationIdentifier")):
        name = certificate if key.startswith("HsmClient") else configuration
        try:
            fn(**{key: name})
        except ClientError as exc:
            problems.append(f"{what} {name}: {aws.describe(exc)}")
    return problems


def _bucket_problems(clients: Any, s3_uri: str, region: str) -> list[str]:
    bucket = s3_uri[len("s3://"):].split("/", 1)[0]
    s3 = clients.client("s3")
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except (ClientError, BotoCoreError) as exc:
        return [f"staging bucket {bucket} is not reachable: {aws.describe(exc)}"]
    problems = []
    if location != region:
        problems.append(f"staging bucket {bucket} is in {location}, the clusters in {region} "
                        "(cross-region staging is slow and costly)")
    # S3 applies the account's and the bucket's public access blocks together.
    return problems + common.staging_problems(clients, bucket)


# -- inventory and baseline -------------------------------------------------------------------

@REGISTRY.action("inventory")
def inventory(ctx: "PhaseContext") -> str:
    with session(ctx, "source") as source:
        tables = inventory_of(ctx, source)
    if not tables:
        raise PreflightFailed("no source table matches [tables] include/exclude",
                              hint="check the patterns (schema.table globs)")
    specs = [TableSpec(t.schema, t.name, t.size_mb, t.rows) for t in tables.values()]
    added = ctx.store.add_tables(ctx.migration, specs, ctx.table_definition.initial)
    unused = sorted(k for k, t in tables.items() if t.unused)
    ctx.store.add_event(ctx.migration, "migration", "inventory",
                        {"tables": len(specs), "added": added, "unused": unused[:100]}, state=ctx.migration.phase)
    return "inventoried"


# -- provision --------------------------------------------------------------------------------

@REGISTRY.action("provision_target")
def provision_target(ctx: "PhaseContext") -> str:
    """Create the target mirroring the source; a resumed run describes before it creates."""
    settings = ctx.config.settings
    clients = common.clients(ctx)
    target_id = settings.target.cluster_id
    source = aws.require_cluster(clients, settings.source.cluster_id)
    request = mirror_request(ctx, source)
    secret_free = {k: v for k, v in request.items() if k != "MasterUserPassword"}

    def send() -> dict[str, Any]:
        answer = aws.call(f"CreateCluster {target_id}",
                          lambda: clients.client("redshift").create_cluster(**request))
        return common.cluster_summary(answer.get("Cluster"))

    def took_effect() -> dict[str, Any] | None:
        # Only a cluster carrying this migration's owner tag (sent with the create) is ours.
        found = aws.describe_cluster(clients, target_id)
        if found is None or aws.tag_value(found, aws.OWNER_TAG) != ctx.migration.name:
            return None
        return common.cluster_summary(found)

    common.once(ctx, PROVISION_KEY, secret_free, send, took_effect)
    aws.wait_available(clients, target_id, should_stop=ctx.should_stop)
    common.remember(ctx, "provision-target:logging", common.mirror_logging(clients, source["ClusterIdentifier"],
                                                                           target_id))
    # Before any data moves: the new cluster must be encrypted exactly as configured.
    common.check_new_cluster_encryption(ctx, "after provisioning", target_id)
    return "target_ready"


def mirror_request(ctx: "PhaseContext", source: dict[str, Any]) -> dict[str, Any]:
    """CreateCluster for the new cluster: the source mirrored (common.mirror_source), its tags plus
    the owner tag, the master user and the configured encryption."""
    from migrator.credentials import resolve

    settings = ctx.config.settings
    section = target_section(ctx.config)
    creds = resolve(section, "target", common.clients(ctx))
    mirror = common.mirror_source(source, settings, restore=False)
    request: dict[str, Any] = {
        "ClusterIdentifier": settings.target.cluster_id, **mirror.request,
        "MasterUsername": source.get("MasterUsername", creds.user), "MasterUserPassword": creds.password,
        "DBName": source.get("DBName", "dev"), "Encrypted": True,
        "Tags": aws.migration_tags(source.get("Tags"), ctx.migration.name),
    }
    if settings.target.encryption == "hsm":
        request["HsmClientCertificateIdentifier"] = settings.target.hsm_client_certificate
        request["HsmConfigurationIdentifier"] = settings.target.hsm_configuration
    elif settings.target.kms_key_id:
        request["KmsKeyId"] = settings.target.kms_key_id
    return request


# -- objects ----------------------------------------------------------------------------------

@REGISTRY.action("replay_objects")
def replay_objects(ctx: "PhaseContext") -> str:
    from migrator.warehouse import replay

    with session(ctx, "source") as source, session(ctx, "target") as target:
        tables = list(inventory_of(ctx, source).values())
        result = replay.replay_objects(source, target, tables=tables)
        bookkeeping = pipeline.ensure_bookkeeping(target)
    ctx.store.add_event(ctx.migration, "migration", "objects_replayed", {
        "statements": result.statements + bookkeeping,
        "skipped": [f"{s.object}: {s.reason}" for s in result.skipped],
        "users_to_reset": result.users_to_reset}, state=ctx.migration.phase)
    return "objects_replayed"


# -- rehearsal --------------------------------------------------------------------------------

@REGISTRY.action("rehearse")
def rehearse(ctx: "PhaseContext") -> str:
    """Unload the largest table once to measure throughput and estimate the write freeze."""
    if common.recorded(ctx, REHEARSAL_KEY) is not None:
        return "rehearsed"
    settings = ctx.config.settings
    assert settings.staging is not None
    tasks = ctx.store.list_tables(ctx.migration, order_by_size=True)
    total_rows = sum(t.source_rows for t in tasks)
    largest = tasks[0]
    with session(ctx, "source") as source:
        info = inventory_of(ctx, source)[largest.pair]
        unloaded = pipeline.unload_table(source, info.schema, info.name, info.columns,
                                         staging_uri=settings.staging.s3_uri.rstrip("/") + "/_rehearsal",
                                         migration=ctx.migration.name, attempt=0,
                                         iam_role_arn=settings.staging.iam_role_arn,
                                         kms_key_id=settings.staging.kms_key_id)
    staging.cleanup_prefix(common.clients(ctx).client("s3"), unloaded.prefix)
    rate = unloaded.rows / unloaded.seconds if unloaded.seconds > 0 and unloaded.rows > 0 else None
    # Unload and load take about as long as each other; validation adds a scan of each side.
    estimate = (3 * total_rows / rate / settings.tables.concurrency) if rate else None
    common.remember(ctx, REHEARSAL_KEY, {"table": largest.qualified_name, "rows": unloaded.rows,
                                         "seconds": round(unloaded.seconds, 3), "rows_per_second": rate,
                                         "estimated_freeze_seconds": estimate})
    common.progress_event(ctx, "migration", {"rehearsal_table": largest.qualified_name,
                                             "rows_per_second": round(rate or 0),
                                             "estimated_freeze_seconds": round(estimate or 0)})
    return "rehearsed"


# -- write freeze -----------------------------------------------------------------------------

@REGISTRY.action("await_write_freeze")
def await_write_freeze(ctx: "PhaseContext") -> str:
    """Writes stopped: only now are the validation queries' results worth keeping (AWS step 9)."""
    source = ctx.config.settings.source.cluster_id
    observed = common.await_write_freeze(ctx, source)
    if not observed.get("assumed"):
        _no_logged_writes(ctx, float(observed["quiet_seconds"]))
    common.take_baseline(ctx, source)
    return "writes_frozen"


def _no_logged_writes(ctx: "PhaseContext", quiet_seconds: float) -> None:
    """CloudWatch can miss a trickle of small writes; the system logs name every written table."""
    from datetime import UTC, datetime, timedelta

    from migrator.warehouse.sql import query

    since = (datetime.now(UTC) - timedelta(seconds=quiet_seconds)).replace(tzinfo=None)
    with session(ctx, "source") as source:
        written = source.run(query("writes_since"), [since], kind="catalog")
    if written:
        names = ", ".join(table_key(schema, table) for schema, table, _ in written[:10])
        raise PreflightFailed(f"write freeze not reached: stl_insert/stl_delete show writes to {names} in the "
                              f"last {quiet_seconds:.0f}s", hint="stop the writers, then re-run; or pass "
                              "--assume-frozen if you know writes are stopped")


# -- copy -------------------------------------------------------------------------------------

class TableWorker:
    """One copy worker's resources: its own source and target sessions (replaced when a
    connection is lost), the source inventory, the staging settings and AWS clients."""

    def __init__(self, ctx: "PhaseContext") -> None:
        self.ctx = ctx
        settings = ctx.config.settings
        assert settings.staging is not None
        self.staging = settings.staging
        self.clients = common.clients(ctx)
        self._sessions = _Sessions(ctx)
        self.tables: dict[tuple[str, str], TableInfo] = {}

    def __enter__(self) -> "TableWorker":
        self._sessions.__enter__()
        self.tables = inventory_of(self.ctx, self._sessions.source)
        return self

    def __exit__(self, *exc: object) -> None:
        self._sessions.__exit__(*exc)

    @property
    def source(self) -> Session:
        return self._sessions.source

    @property
    def target(self) -> Session:
        return self._sessions.target

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


Step = StepContext[TableWorker]


def _statement_recorder(step: Step) -> StatementHook:
    """History gets every UNLOAD and COPY (already redacted by the pipeline) before it runs."""
    def record(kind: str, sql: str) -> None:
        step.phase.store.add_event(step.phase.migration, step.task.subject, "statement",
                                   {"kind": kind, "statement": sql, "attempt": step.task.attempt},
                                   state=step.phase.migration.phase)
    return record


def _record_failure(step: Step, exc: MigratorError) -> None:
    """A failed UNLOAD/COPY: its statement and the first rows of stl_load_errors, in history."""
    statement = getattr(exc, "statement", None)
    load_errors = getattr(exc, "load_errors", None) or []
    if statement is None and not load_errors:
        return
    step.phase.store.add_event(step.phase.migration, step.task.subject, "statement_failed",
                               {"statement": statement, "error": exc.one_line(), "attempt": step.task.attempt,
                                "load_errors": [row.describe() for row in load_errors]},
                               state=step.phase.migration.phase)


def _recording_failures(step: Step, fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        try:
            return fn()
        except MigratorError as exc:
            _record_failure(step, exc)
            raise
    return run


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


@REGISTRY.step("unload")
def unload_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)
    _clean_earlier_attempts(step, info)
    on_statement = _statement_recorder(step)

    def unload() -> dict[str, Any]:
        started = time.time()
        try:
            result = pipeline.unload_table(worker.source, info.schema, info.name, info.columns,
                                           staging_uri=worker.staging.s3_uri, migration=step.phase.migration.name,
                                           attempt=task.attempt, iam_role_arn=worker.staging.iam_role_arn,
                                           kms_key_id=worker.staging.kms_key_id, on_statement=on_statement)
        except OutcomeUnknown as exc:
            # An UNLOAD only writes staging: once the first is over, running it again (CLEANPATH)
            # replaces whatever it wrote.
            worker.end_lost_statement("source", exc)
            raise TransientError(f"{exc.message}; the first UNLOAD was ended, running it again") from None
        report = staging.verify_staging(worker.clients.client("s3"), worker.clients.client("kms"),
                                        result.manifest_url, kms_key_id=worker.staging.kms_key_id,
                                        expected_rows=result.rows)
        return {"manifest_url": result.manifest_url, "staging_prefix": result.prefix,
                "unload_format": result.format.name, "format_reason": result.format.reason,
                "rows_unloaded": result.rows, "bytes_unloaded": report.bytes,
                "step_timings": _timing(task, "unload", started)}

    fields = worker.retried(f"unload {task.qualified_name}", _recording_failures(step, unload))
    failpoints.hit("after_unload")
    return StepResult(fields)


@REGISTRY.step("load")
def load_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)
    on_statement = _statement_recorder(step)
    migration = step.phase.migration.name

    def load() -> dict[str, Any]:
        started = time.time()
        assert task.manifest_url and task.unload_format
        fmt = pipeline.choose_format(info.columns)
        report = staging.verify_staging(worker.clients.client("s3"), worker.clients.client("kms"),
                                        task.manifest_url, kms_key_id=worker.staging.kms_key_id,
                                        expected_rows=task.rows_unloaded or 0)
        try:
            result = pipeline.load_exactly_once(worker.target, info.schema, info.name, manifest_url=task.manifest_url,
                                                fmt=fmt, iam_role_arn=worker.staging.iam_role_arn,
                                                migration=migration, attempt=task.attempt,
                                                explicit_ids=bool(info.identity_columns), expected_rows=report.rows,
                                                on_statement=on_statement, columns=info.columns)
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

    fields = worker.retried(f"load {task.qualified_name}", _recording_failures(step, load))
    failpoints.hit("after_load_commit")
    return StepResult(fields)


@REGISTRY.step("validate")
def validate_step(step: Step) -> StepResult:
    worker, task = step.resources, step.task
    info = worker.info(task)

    def compare() -> dict[str, Any]:
        started = time.time()
        result = checksum.compare_table(worker.source, worker.target, info.schema, info.name, info.columns)
        return {"source_checksum": f"{result.source.rows}:{result.source.checksum}",
                "target_checksum": f"{result.target.rows}:{result.target.checksum}",
                "mismatch": result.describe(), "step_timings": _timing(task, "validate", started)}

    fields = worker.retried(f"validate {task.qualified_name}", compare)
    mismatch = fields.pop("mismatch", None)
    if fields["source_checksum"] != fields["target_checksum"]:
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
    s3 = common.clients_for(settings).client("s3")
    removed = 0
    for prefix in migration_prefixes(settings.staging.s3_uri, settings.migration.name):
        removed += staging.cleanup_prefix(s3, prefix)
    return removed


def migration_prefixes(staging_uri: str, migration: str) -> list[str]:
    """The prefixes this migration stages under: its own (tables) and the rehearsal's."""
    def migration_part(uri: str) -> str:  # <uri>/<migration>/<schema>.<table>/attempt-0/ -> <uri>/<migration>/
        return staging_prefix(uri, migration, "s", "t", 0).rstrip("/").rsplit("/", 2)[0] + "/"
    return [migration_part(staging_uri), migration_part(staging_uri.rstrip("/") + "/_rehearsal")]


class _Sessions:
    """A worker's source (autocommit) and target (transactional) sessions, replaceable when lost."""

    def __init__(self, ctx: "PhaseContext") -> None:
        self.ctx = ctx
        self._stack: list[Any] = []
        self.source: Session
        self.target: Session

    def __enter__(self) -> "_Sessions":
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _open(self) -> None:
        source_cm, target_cm = session(self.ctx, "source"), session(self.ctx, "target", autocommit=False)
        self.source = source_cm.__enter__()
        self._stack.append(source_cm)
        self.target = target_cm.__enter__()
        self._stack.append(target_cm)

    def _close(self) -> None:
        while self._stack:
            try:
                self._stack.pop().__exit__(None, None, None)
            except Exception:  # a dead connection may refuse to close politely
                pass

    def reconnect(self) -> None:
        self._close()
        self._open()


def _timing(task: TableView, step: str, started: float) -> dict[str, Any]:
    timings = dict(task.step_timings or {})
    timings[step] = {"started": started, "seconds": round(time.time() - started, 3)}
    return timings


@REGISTRY.action("copy_tables")
def copy_tables(ctx: "PhaseContext") -> str:
    """The engine's table worker walks every table; this phase only says with what."""
    outcomes = tables_engine.walk_all(ctx, REGISTRY.steps, lambda: TableWorker(ctx),
                                      ctx.config.settings.tables.concurrency)
    if ctx.tables_not_done():
        failed = [o for o in outcomes if not o.done]
        listed = "; ".join(f"{o.table}: {o.error}" for o in failed[:5]) or "tables need an operator"
        raise RemoteError(f"{len(failed) or ctx.tables_not_done()} table(s) did not copy: {listed}",
                          hint="fix the cause and re-run; finished tables are kept, failed ones retried")
    return "tables_copied"


# -- validation -------------------------------------------------------------------------------

@REGISTRY.action("validate")
def validate(ctx: "PhaseContext") -> str:
    """The source must still match what was copied; tables that changed are copied again."""
    changed: list[tuple[str, str]] = []
    with session(ctx, "source") as source:
        tables = inventory_of(ctx, source)
        known = {t.pair for t in ctx.store.list_tables(ctx.migration)}
        created = [info for pair, info in tables.items() if pair not in known]
        if created:
            _adopt_new_tables(ctx, source, created)
            changed += [info.pair for info in created]
        for task in ctx.store.list_tables(ctx.migration):
            if task.pair in changed:
                continue
            info = tables.get(task.pair)
            if info is None:
                raise RemoteError(f"{task.qualified_name} disappeared from the source during the migration")
            now = checksum.fingerprint(source, info.schema, info.name, info.columns)
            if f"{now.rows}:{now.checksum}" != task.source_checksum:
                changed.append(task.pair)
                ctx.table_flow(task).fire("recopy", detail={"reason": "source changed after copy"})
    if changed:
        ctx.store.add_event(ctx.migration, "migration", "source_changed",
                            {"tables": [table_key(*pair) for pair in changed]},
                            state=ctx.migration.phase)
        return "source_changed"
    common.check_against_baseline(ctx, ctx.config.settings.source.cluster_id, "source before cutover")
    _replay_after_data(ctx)
    with session(ctx, "target") as target:
        pipeline.drop_bookkeeping(target)
    return "validated"


def _replay_after_data(ctx: "PhaseContext") -> None:
    """What must wait for the data: foreign keys, routines, views, materialized views (refreshed),
    ownership, grants and default privileges. Idempotent: a rerun creates only what is missing."""
    from migrator.warehouse import replay

    t = ctx.config.settings.tables
    with session(ctx, "source") as source, session(ctx, "target") as target:
        tables = list(inventory_of(ctx, source).values())
        keys = replay.replay_foreign_keys(source, target, tables)
        after = replay.replay_after_data(source, target, include=t.include, exclude=t.exclude)
    ctx.store.add_event(ctx.migration, "migration", "objects_replayed_after_data", {
        "statements": keys.statements + after.statements,
        "skipped": [f"{s.object}: {s.reason}" for s in keys.skipped + after.skipped]}, state=ctx.migration.phase)


def _adopt_new_tables(ctx: "PhaseContext", source: Session, created: list[TableInfo]) -> None:
    """Tables that appeared on the source during the migration are created on the target and copied."""
    from migrator.warehouse import replay

    with session(ctx, "target") as target:
        result = replay.replay_objects(source, target, tables=created)
    ctx.store.add_tables(ctx.migration, [TableSpec(t.schema, t.name, t.size_mb, t.rows) for t in created],
                         ctx.table_definition.initial)
    ctx.store.add_event(ctx.migration, "migration", "objects_replayed",
                        {"statements": result.statements, "tables_created_during_migration":
                         [t.ref for t in created]}, state=ctx.migration.phase)


def reconciler(config: LoadedConfig) -> Callable[[TableView], dict[str, Any]]:
    """For tables found `loading` after a crash: did their target transaction commit?"""
    def check(task: TableView) -> dict[str, Any]:
        try:
            with session(config, "target") as target:
                state = pipeline.reconcile_load(target, config.settings.migration.name, task.schema_name,
                                                task.table_name, task.attempt)
        except TransientError:
            return {"load_committed": False}
        return {"load_committed": state.committed,
                "fields": {"rows_loaded": state.rows} if state.committed else {}}
    return check


# -- cutover and after ------------------------------------------------------------------------

@REGISTRY.action("cutover")
def do_cutover(ctx: "PhaseContext") -> str:
    cutover.cutover(ctx)
    return "cut_over"


REGISTRY.action(stray_writes.ACTION)(stray_writes.watch_then_await_approval)


@REGISTRY.action("decommission")
def do_decommission(ctx: "PhaseContext") -> str:
    cutover.decommission(ctx)
    return "decommissioned"


# -- rollback (the runner runs it under the run lease) ----------------------------------------

def undo(ctx: "PhaseContext") -> dict[str, Any]:
    """The shared rollback, then this route's own data: the migration's staged files (9.2.13)."""
    done = cutover.undo(ctx)
    done["staged_files_removed"] = remove_staged_files(ctx.config)
    return done


rollback_refusal = cutover.rollback_refusal
