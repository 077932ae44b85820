"""The unload/copy route: a new encrypted cluster, filled table by table through
KMS-encrypted S3 staging, validated, then swapped in by the shared cutover.

Every phase is idempotent: a resumed run re-enters the phase it was in and the
store (tables' states, recorded remote actions, load markers on the target)
tells it what is already done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws import clusters as aws
from migrator.aws import staging
from migrator.config import LoadedConfig
from migrator.engine import tables as tables_engine
from migrator.engine.registry import Registry
from migrator.errors import OutcomeUnknown, PreflightFailed, RemoteError, TransientError
from migrator.names import table_key
from migrator.store import TableSpec, TableView
from migrator.strategies import (common, cutover, encryption, part_steps, preflight_checks, recorded, stray_writes,
                                 table_steps, window)
from migrator.strategies.mirror import mirror_logging, mirror_source, mirror_usage_limits, rename_notes
from migrator.strategies.sessions import inventory_of, session, target_section
from migrator.warehouse import parts as wparts
from migrator.warehouse import checksum, pipeline
from migrator.warehouse.connection import Session, end_backend
from migrator.warehouse.inventory import TableInfo

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger(__name__)
REGISTRY = Registry()
PREFLIGHT_KEY = "preflight"
PROVISION_KEY = "provision-target"
REHEARSAL_KEY = "rehearsal"


def registry() -> Registry:
    """The phase actions with the table steps of table_steps.py."""
    return REGISTRY.extended(table_steps.STEPS)


# -- preflight --------------------------------------------------------------------------------

@REGISTRY.action("preflight")
def preflight(ctx: "PhaseContext") -> str:
    """Read-only: every problem is collected and reported together."""
    settings = ctx.config.settings
    clients = recorded.clients(ctx)
    region = settings.migration.region
    source, problems = preflight_checks.source_problems(ctx, settings.source.cluster_id)
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
    problems += preflight_checks.target_credentials_problems(ctx, section, creates_target=not ours)
    notes: list[str] = []
    if source is not None:
        mirror = mirror_source(source, settings, restore=False)
        problems += list(mirror.problems)
        notes = list(mirror.overridden) + list(mirror.reported) + rename_notes(clients, source)
    if source is not None and not problems:
        # Only once everything else holds: the probe writes (and removes) staged files and a
        # temporary table, which needs a reachable source, its role and a sound bucket.
        problems += preflight_checks.probe_problems(ctx)
    preflight_checks.fail_preflight(problems)
    assert source is not None  # fail_preflight raised otherwise
    ctx.store.add_event(ctx.migration, "migration", "not_mirrored", {"notes": notes}, state=ctx.migration.phase)
    ctx.facts["detail"] = {"notes": notes}
    copy = aws.snapshot_copy_of(source)
    recorded.remember(ctx, PREFLIGHT_KEY, {"source": recorded.cluster_summary(source),
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
        location = aws.bucket_region(s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"))
    except (ClientError, BotoCoreError) as exc:
        return [f"staging bucket {bucket} is not reachable: {aws.describe(exc)}"]
    problems = []
    if location != region:
        problems.append(f"staging bucket {bucket} is in {location}, the clusters in {region} "
                        "(cross-region staging is slow and costly)")
    # S3 applies the account's and the bucket's public access blocks together.
    return problems + preflight_checks.staging_problems(clients, bucket)


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
    clients = recorded.clients(ctx)
    target_id = settings.target.cluster_id
    source = aws.require_cluster(clients, settings.source.cluster_id)
    request = mirror_request(ctx, source)
    secret_free = {k: v for k, v in request.items() if k != "MasterUserPassword"}

    def send() -> dict[str, Any]:
        answer = aws.call(f"CreateCluster {target_id}",
                          lambda: clients.client("redshift").create_cluster(**request))
        return recorded.cluster_summary(answer.get("Cluster"))

    def took_effect() -> dict[str, Any] | None:
        # Only a cluster carrying this migration's owner tag (sent with the create) is ours.
        found = aws.describe_cluster(clients, target_id)
        if found is None or aws.tag_value(found, aws.OWNER_TAG) != ctx.migration.name:
            return None
        return recorded.cluster_summary(found)

    recorded.once(ctx, PROVISION_KEY, secret_free, send, took_effect)
    aws.wait_available(clients, target_id, should_stop=ctx.should_stop)
    recorded.remember(ctx, "provision-target:logging", mirror_logging(clients, source["ClusterIdentifier"], target_id))
    recorded.remember(ctx, "provision-target:usage_limits", mirror_usage_limits(clients, source["ClusterIdentifier"], target_id))
    # Before any data moves: the new cluster must be encrypted exactly as configured.
    encryption.check_new_cluster_encryption(ctx, "after provisioning", target_id)
    return "target_ready"


def mirror_request(ctx: "PhaseContext", source: dict[str, Any]) -> dict[str, Any]:
    """CreateCluster for the new cluster: the source mirrored (mirror_source), its tags plus
    the owner tag, the master user and the configured encryption."""
    from migrator.credentials import resolve

    settings = ctx.config.settings
    section = target_section(ctx.config)
    creds = resolve(section, "target", recorded.clients(ctx))
    mirror = mirror_source(source, settings, restore=False)
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

#: How many times the rehearsal's UNLOAD is sent when its connection is lost mid-statement.
REHEARSAL_ATTEMPTS = 3


def _end_lost_unload(source: Session, lost: OutcomeUnknown) -> None:
    """Before the rehearsal's UNLOAD is sent again on a new session: the first one's server process
    ended. It only writes the rehearsal's own prefix, so once it is over, the next one (CLEANPATH)
    replaces whatever it wrote."""
    if lost.backend_pid is not None:
        ended = end_backend(source, lost.backend_pid)
        log.info("rehearsal: ended server process %s of the lost connection: %s", lost.backend_pid,
                 "it was still running" if ended else "it had already ended")
    log.warning("%s; the first UNLOAD was ended, running it again", lost.message)


@REGISTRY.action("rehearse")
def rehearse(ctx: "PhaseContext") -> str:
    """Unload the largest table once to measure throughput and estimate the write freeze; a table
    big enough for parts (tables.part_size) is sampled instead of unloaded whole: split by ranges,
    its largest part is unloaded; loaded in file groups (no column whose ranges are cheap), one
    group's worth of its rows is (a nested LIMIT); the rate is scaled to the whole table."""
    if recorded.recorded(ctx, REHEARSAL_KEY) is not None:
        return "rehearsed"
    settings = ctx.config.settings
    assert settings.staging is not None
    tasks = ctx.store.list_tables(ctx.migration, order_by_size=True)
    total_rows = sum(t.source_rows for t in tasks)
    largest = tasks[0]
    staging_uri = settings.staging.s3_uri.rstrip("/") + "/_rehearsal"

    def sample(source: Session) -> tuple[Any, dict[str, Any]]:
        sampled: dict[str, Any] = {}
        info = inventory_of(ctx, source)[largest.pair]
        wanted = part_steps.wants_parts(ctx.config, largest)
        ranges = wparts.plan_ranges(source, info, wanted) if wanted > 1 else []
        table_bytes = largest.size_mb * 1024 * 1024 * 2  # staged text is about twice the compressed size
        if len(ranges) > 1:
            part = max(ranges, key=lambda r: r.rows)  # the largest part: the least overhead per row
            slices = wparts.slice_count(source)
            unloaded = wparts.unload_part(source, info, part, staging_uri=staging_uri, migration=ctx.migration.name,
                                          attempt=0, iam_role_arn=settings.staging.iam_role_arn,
                                          kms_key_id=settings.staging.kms_key_id,
                                          estimated_bytes=table_bytes // len(ranges),
                                          source_slices=slices, target_slices=slices)
            sampled = {"sampled": "part", "sampled_part": part.part_no, "parts": len(ranges),
                       "table_rows": sum(r.rows for r in ranges)}
        elif wanted > 1 and largest.source_rows > wanted:
            # File groups: one group's worth of rows, the way the copy's one UNLOAD writes them.
            rows = -(-largest.source_rows // wanted)
            slices = wparts.slice_count(source)
            unloaded = wparts.unload_sample(source, info, rows, staging_uri=staging_uri,
                                            migration=ctx.migration.name, iam_role_arn=settings.staging.iam_role_arn,
                                            kms_key_id=settings.staging.kms_key_id,
                                            estimated_bytes=table_bytes // wanted, source_slices=slices,
                                            target_slices=slices)
            sampled = {"sampled": "file group", "parts": wanted, "table_rows": largest.source_rows}
        else:
            unloaded = pipeline.unload_table(source, info.schema, info.name, info.columns, staging_uri=staging_uri,
                                             migration=ctx.migration.name, attempt=0,
                                             iam_role_arn=settings.staging.iam_role_arn,
                                             kms_key_id=settings.staging.kms_key_id)
        return unloaded, sampled

    lost: OutcomeUnknown | None = None
    for attempt in range(1, REHEARSAL_ATTEMPTS + 1):
        with session(ctx, "source") as source:
            if lost is not None:
                _end_lost_unload(source, lost)
            try:
                unloaded, sampled = sample(source)
                break
            except OutcomeUnknown as exc:
                if attempt == REHEARSAL_ATTEMPTS:
                    raise
                lost = exc
    staging.cleanup_prefix(recorded.clients(ctx).client("s3"), unloaded.prefix)
    rate = unloaded.rows / unloaded.seconds if unloaded.seconds > 0 and unloaded.rows > 0 else None
    # Unload and load take about as long as each other; validation adds a scan of each side.
    estimate = (3 * total_rows / rate / settings.tables.concurrency) if rate else None
    if sampled:
        sampled["sampled_rows"] = unloaded.rows
    recorded.remember(ctx, REHEARSAL_KEY, {"table": largest.qualified_name, "rows": unloaded.rows,
                                           "seconds": round(unloaded.seconds, 3), "rows_per_second": rate,
                                           "estimated_freeze_seconds": estimate, **sampled})
    common.progress_event(ctx, "migration", {"rehearsal_table": largest.qualified_name,
                                             "rows_per_second": round(rate or 0),
                                             "estimated_freeze_seconds": round(estimate or 0), **sampled})
    what = (f"sampled {unloaded.rows:,} of {sampled['table_rows']:,} rows (one {sampled['sampled']} of "
            f"{sampled['parts']}), scaled by size" if sampled else f"unloaded all {unloaded.rows:,} rows")
    log.info("rehearsal on %s: %s; %s rows/s; estimated freeze %s s", largest.qualified_name, what,
             f"{rate:,.0f}" if rate else "unknown", f"{estimate:,.0f}" if estimate is not None else "unknown")
    return "rehearsed"


# -- write freeze -----------------------------------------------------------------------------

@REGISTRY.action("await_write_freeze")
def await_write_freeze(ctx: "PhaseContext") -> str:
    """The cutover window opens: writers stopped (CloudWatch quiet and no logged write), so what the
    catch-up finds different is final (AWS step 9, kept to the window instead of the whole copy)."""
    source = ctx.config.settings.source.cluster_id
    observed = common.await_write_freeze(ctx, source)
    if not observed.get("assumed"):
        _no_logged_writes(ctx, float(observed["quiet_seconds"]))
    return "writes_frozen"


@REGISTRY.action("catch_up")
def catch_up(ctx: "PhaseContext") -> str:
    """Copy again what production changed during the copy and while the gate waited (see window)."""
    # The new cluster must be up, with nothing pending (the swap needs that too): a paused, deleted
    # or busy one ends the window here with one line, before anything is copied or renamed.
    cutover.wait_ready(ctx, ctx.config.settings.target.cluster_id,
                       "the cutover window copies what changed into the new cluster", nothing_pending=True)
    with session(ctx, "target") as target:
        # Dropped at the end of a window; a window entered again (a write seen before the first
        # rename) loads through the markers once more.
        pipeline.ensure_bookkeeping(target)
    window.catch_up(ctx, session, walk=lambda: _walk_tables(ctx), replay_after_data=lambda: _replay_after_data(ctx))
    with session(ctx, "target") as target:
        pipeline.drop_bookkeeping(target)
    return "caught_up"


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


@REGISTRY.action("copy_tables")
def copy_tables(ctx: "PhaseContext") -> str:
    """The engine's table worker walks every table; this phase only says with what."""
    _walk_tables(ctx)
    return "tables_copied"


def _walk_tables(ctx: "PhaseContext") -> None:
    """Every table not done, through the table steps; refuses to go on while any needs an operator."""
    parted = part_steps.any_parted(ctx)
    outcomes = tables_engine.walk_all(ctx, table_steps.STEPS.steps, lambda: table_steps.TableWorker(ctx),
                                      ctx.config.settings.tables.concurrency,
                                      part_steps=part_steps.PART_STEPS if parted else None,
                                      reconcile_part=part_steps.reconcile_part if parted else None)
    if ctx.tables_not_done():
        failed = [o for o in outcomes if not o.done]
        listed = "; ".join(f"{o.table}: {o.error}" for o in failed[:5]) or "tables need an operator"
        raise RemoteError(f"{len(failed) or ctx.tables_not_done()} table(s) did not copy: {listed}",
                          hint="fix the cause and re-run; finished tables are kept, failed ones retried")


# -- validation -------------------------------------------------------------------------------

@REGISTRY.action("validate")
def validate(ctx: "PhaseContext") -> str:
    """Production is still writable: tables changed since their copy are copied again, until a table
    has been copied `tables.live_copies` times; then it is left for the cutover window."""
    changed: list[tuple[str, str]] = []
    deferred: list[str] = []
    live_copies = ctx.config.settings.tables.live_copies
    with session(ctx, "source") as source:
        tables = inventory_of(ctx, source)
        known = {t.pair for t in ctx.store.list_tables(ctx.migration)}
        created = [info for pair, info in tables.items() if pair not in known]
        if created:
            _adopt_new_tables(ctx, source, created)
            changed += [info.pair for info in created]
        tasks = [t for t in ctx.store.list_tables(ctx.migration)
                 if t.pair not in changed and t.state not in window.moved_aside(ctx.table_definition)]
        # Every table's checksum now, many tables per statement (one statement per table before).
        now_all = checksum.fingerprints(source, [(i.schema, i.name, i.columns)
                                                 for i in (tables.get(t.pair) for t in tasks) if i is not None])
        for task in tasks:
            info = tables.get(task.pair)
            if info is None:
                # Dropped while production kept running: the window drops it on the target too.
                ctx.table_flow(task).fire("drop", detail={"reason": "dropped from the source during the copy"})
                continue
            now = now_all[info.pair]
            if f"{now.rows}:{now.checksum}" != task.source_checksum:
                if task.attempt >= live_copies:
                    deferred.append(task.qualified_name)
                    ctx.table_flow(task).fire("defer", detail={"reason": f"written during each of {task.attempt} "
                                                                         "copies; left for the cutover window"})
                    continue
                changed.append(task.pair)
                ctx.table_flow(task).fire("recopy", detail={"reason": "source changed after copy"})
    if deferred:
        ctx.store.add_event(ctx.migration, "migration", "left_for_window", {"tables": deferred},
                            state=ctx.migration.phase)
    if changed:
        ctx.store.add_event(ctx.migration, "migration", "source_changed",
                            {"tables": [table_key(*pair) for pair in changed]},
                            state=ctx.migration.phase)
        return "source_changed"
    _replay_after_data(ctx)
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
    """For tables found `loading` after a crash: did their target transaction commit?

    Built only for the commands that drive the migration (run, a worker, rollback), which talk to
    the clusters next: what their first remote steps need is loaded meanwhile (warm_up)."""
    warm_up(config)

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


#: The AWS clients a run's first remote steps use, in the order it needs them: the endpoint
#: lookup of its sessions (and the reconciler's), then the staging checks of its first step.
WARM_CLIENTS = ("redshift", "s3", "kms")


def warm_up(config: LoadedConfig) -> threading.Thread:
    """Load the warehouse driver and make the run's AWS clients in a thread of its own, while the
    run reads its store, takes its lease and hands back a dead run's tables: a restarted run then
    finds them ready instead of making each before its first remote step (the driver's import
    and each client's service model are mostly disk reads on a loaded machine). Best effort and
    silent: whatever fails here fails again, and is reported, where the run makes the real call;
    the clients are the run's own (one per service in the process, made once under their lock)."""
    settings = config.settings

    def warm() -> None:
        try:
            import redshift_connector  # noqa: F401  (imported by the first connection otherwise)

            made = recorded.clients_for(settings)
            for service in WARM_CLIENTS:
                made.client(service)
        except Exception as exc:  # noqa: BLE001 (met again where the run needs it)
            log.debug("warm-up: %s", exc)

    thread = threading.Thread(target=warm, name="migrator-warm-up", daemon=True)
    thread.start()
    return thread


# -- cutover and after ------------------------------------------------------------------------

@REGISTRY.action("cutover")
def do_cutover(ctx: "PhaseContext") -> str:
    def nothing_written_since_catch_up() -> None:
        with session(ctx, "source") as source:
            window.confirm_quiet(ctx, source)

    try:
        cutover.cutover(ctx, before_rename=nothing_written_since_catch_up, baseline_key=window.baseline_key(ctx))
    except window.WrittenSinceCatchUp as exc:
        ctx.store.add_event(ctx.migration, "migration", "written_before_rename", {"tables": exc.tables},
                            state=ctx.migration.phase)
        return "source_changed"
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
    done["staged_files_removed"] = table_steps.remove_staged_files(ctx.config)
    return done


rollback_refusal = cutover.rollback_refusal
