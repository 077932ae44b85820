"""The phases every strategy shares: the baseline kept in the store and checked against,
progress events, the write-freeze guard and the cross-region snapshot copy turned off and on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection, Settings
from migrator.engine.registry import Registry
from migrator.errors import PreflightFailed, TransientError, ValidationMismatch
from migrator.strategies.recorded import clients, once, recorded, remember
from migrator.strategies.sessions import connect
from migrator.warehouse import baseline as bl

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

BASELINE_KEY = "baseline"
#: The phase actions routes share by name (a route whose YAML names them extends its registry with this).
SHARED_PHASES = Registry()
PROGRESS_TRIGGER = "progress"
#: Environment overrides of the [freeze] settings, for rehearsals that cannot wait five minutes.
_FREEZE_ENV = {"max_write_iops": "MIGRATOR_FREEZE_MAX_WRITE_IOPS", "quiet_seconds": "MIGRATOR_FREEZE_QUIET_SECONDS",
               "timeout_seconds": "MIGRATOR_FREEZE_TIMEOUT_SECONDS"}


def freeze_settings(settings: Settings) -> dict[str, float]:
    values = settings.freeze.model_dump()
    for key, var in _FREEZE_ENV.items():
        if os.environ.get(var):
            values[key] = float(os.environ[var])
    return values


# -- baseline -------------------------------------------------------------------------------

def measure(settings: Settings, client_set: AwsClients, cluster_id: str,
            checksum: bl.Checksum | None = None) -> bl.Baseline:
    from migrator.warehouse.inventory import matches

    include, exclude = settings.tables.include, settings.tables.exclude
    conn = connect(settings, client_set, cluster_id)
    try:
        return bl.take(conn, checksum, keep=lambda schema, table: matches(f"{schema}.{table}", include, exclude))
    finally:
        conn.close()


def take_baseline(ctx: "PhaseContext", cluster_id: str, checksum: bl.Checksum | None = None) -> bl.Baseline:
    """The validation queries on ``cluster_id``, stored once; a resumed run keeps the first."""
    kept = recorded(ctx, BASELINE_KEY)
    if kept is not None:
        return bl.Baseline.from_dict(kept)
    measured = measure(ctx.config.settings, clients(ctx), cluster_id, checksum)
    return bl.Baseline.from_dict(remember(ctx, BASELINE_KEY, {**measured.to_dict(), "cluster_id": cluster_id}))


@SHARED_PHASES.action("baseline")
def baseline(ctx: "PhaseContext") -> str:
    """The `baseline` phase of the routes that name it: the source measured once, before anything changes."""
    taken = take_baseline(ctx, ctx.config.settings.source.cluster_id)
    ctx.facts["detail"] = {"user_tables": taken.user_tables, "tables": len(taken.rows)}
    return "baseline_taken"


def stored_baseline(ctx: "PhaseContext", key: str | None = None) -> bl.Baseline:
    kept = recorded(ctx, key or BASELINE_KEY)
    if kept is None:
        raise ValidationMismatch("no baseline was recorded for this migration",
                                 hint="internal order problem: re-run from the baseline phase")
    return bl.Baseline.from_dict(kept)


def check_against_baseline(ctx: "PhaseContext", cluster_id: str, what: str,
                           checksum: bl.Checksum | None = None, *, conn: ConnectionSection | None = None,
                           baseline_key: str | None = None,
                           hint: str = "find what wrote to the cluster; `migrator history` has the details"
                           ) -> bl.Baseline:
    """The one baseline comparison: measure ``cluster_id`` (logging in with ``conn`` when it is not
    the source, e.g. the new cluster), record the result as a `validation` event, refuse differences."""
    expected = stored_baseline(ctx, baseline_key)
    settings = ctx.config.settings
    if conn is not None:
        settings = settings.model_copy(update={"source": conn})
    found = measure(settings, clients(ctx), cluster_id, checksum)
    differences = bl.compare(expected, found)
    ctx.store.add_event(ctx.migration, "migration", "validation",
                        {"cluster_id": cluster_id, "what": what, "differences": [str(d) for d in differences],
                         "user_tables": found.user_tables, "tables": len(found.rows)}, state=ctx.migration.phase)
    if differences:
        raise ValidationMismatch(f"{what}: {cluster_id} differs from the baseline: {bl.summary(differences)}",
                                 hint=hint)
    return found


# -- progress -------------------------------------------------------------------------------

def progress_event(ctx: "PhaseContext", subject: str, figures: Mapping[str, Any]) -> None:
    """A progress row `status` can show (latest `progress` event of the migration)."""
    ctx.store.add_event(ctx.migration, subject, PROGRESS_TRIGGER, dict(figures), state=ctx.migration.phase)


def resize_figures(resize: Mapping[str, Any] | None, cluster: Mapping[str, Any] | None) -> dict[str, Any]:
    figures: dict[str, Any] = {"cluster_status": (cluster or {}).get("ClusterStatus"),
                               "read_only": (cluster or {}).get("ClusterStatus") == "resizing"}
    if resize:
        done = len(resize.get("ImportTablesCompleted") or [])
        figures.update(
            resize_status=resize.get("Status"), percent=resize.get("DataTransferProgressPercent"),
            tables_done=done, tables_in_progress=len(resize.get("ImportTablesInProgress") or []),
            tables_total=done + len(resize.get("ImportTablesInProgress") or [])
            + len(resize.get("ImportTablesNotStarted") or []),
            eta_seconds=resize.get("EstimatedTimeToCompletionInSeconds"),
            elapsed_seconds=resize.get("ElapsedTimeInSeconds"),
            target_encryption=resize.get("TargetEncryptionType"))
    return figures


# -- write freeze ---------------------------------------------------------------------------

def await_write_freeze(ctx: "PhaseContext", cluster_id: str) -> dict[str, Any]:
    """Pass when CloudWatch shows no writes on the cluster for the quiet period (or the operator
    vouches with --assume-frozen, which is recorded)."""
    freeze = freeze_settings(ctx.config.settings)
    max_iops, quiet_seconds, timeout = freeze["max_write_iops"], freeze["quiet_seconds"], freeze["timeout_seconds"]
    if ctx.options.assume_frozen:
        detail = {"cluster_id": cluster_id, "assumed": True, "via": "--assume-frozen"}
        ctx.store.add_event(ctx.migration, "migration", "write_freeze_assumed", detail, state=ctx.migration.phase)
        return detail
    client_set = clients(ctx)
    seen: dict[str, Any] = {}

    def quiet() -> dict[str, Any] | None:
        peak, samples = aws.max_write_iops(client_set, cluster_id, quiet_seconds)
        seen.update(peak=peak, samples=samples)
        if samples > 0 and peak is not None and peak <= max_iops:
            return {"cluster_id": cluster_id, "max_write_iops": peak, "samples": samples,
                    "quiet_seconds": quiet_seconds}
        return None

    from migrator.retry import Backoff, wait_until

    try:
        found = wait_until(quiet, what=f"no writes on {cluster_id}", timeout=timeout,
                           backoff=Backoff(base=1.0, cap=30.0), should_stop=ctx.should_stop)
    except TransientError:
        saw = ("no WriteIOPS datapoints" if not seen.get("samples")
               else f"WriteIOPS up to {seen.get('peak')} (threshold {max_iops})")
        raise PreflightFailed(f"write freeze not reached on {cluster_id}: CloudWatch shows {saw} in the last "
                              f"{quiet_seconds:.0f}s", hint="stop ETL and other writers, then re-run; or pass "
                              "--assume-frozen if you know writes are stopped") from None
    ctx.store.add_event(ctx.migration, "migration", "write_freeze_observed", found, state=ctx.migration.phase)
    return found


# -- cross-region snapshot copy -------------------------------------------------------------

def copy_key(cluster_id: str, what: str) -> str:
    return f"snapshot_copy:{cluster_id}:{what}"


def disable_snapshot_copy(ctx: "PhaseContext", cluster_id: str) -> dict[str, Any]:
    """Record the copy settings, then disable copy; returns the record ({"on": False} when it was off)."""
    client_set = clients(ctx)
    record = recorded(ctx, copy_key(cluster_id, "settings"))
    if record is None:
        cluster = aws.require_cluster(client_set, cluster_id)
        copy = aws.snapshot_copy_of(cluster)
        if copy is not None and not ctx.config.settings.target.handle_snapshot_copy:
            raise PreflightFailed(aws.snapshot_copy_steps(cluster_id, copy, ctx.config.settings.migration.region))
        record = remember(ctx, copy_key(cluster_id, "settings"),
                          {"on": copy is not None, **(copy.to_dict() if copy else {})})
    if not record.get("on"):
        return record
    redshift = client_set.client("redshift")
    once(ctx, copy_key(cluster_id, "disable"), {"ClusterIdentifier": cluster_id},
         send=lambda: (aws.call(f"DisableSnapshotCopy {cluster_id}",
                                lambda: redshift.disable_snapshot_copy(ClusterIdentifier=cluster_id)), {})[1],
         took_effect=lambda: {} if aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id)) is None
         else None)
    return record


def restore_snapshot_copy(ctx: "PhaseContext", cluster_id: str, *, settings_of: str | None = None,
                          action: str = "enable") -> dict[str, Any]:
    """Re-enable snapshot copy on ``cluster_id`` with the settings recorded for ``settings_of``
    (default: the same cluster); a KMS-encrypted cluster gets a grant in the destination region."""
    record = recorded(ctx, copy_key(settings_of or cluster_id, "settings"))
    if not record or not record.get("on"):
        return {"restored": False}
    client_set = clients(ctx)
    copy = aws.SnapshotCopy.from_dict(record)

    def send() -> dict[str, Any]:
        cluster = aws.require_cluster(client_set, cluster_id)
        grant = copy.grant_name
        created = False
        if cluster.get("Encrypted") and cluster.get("KmsKeyId"):
            # Copies are re-encrypted in the destination region with that region's key via the grant;
            # without a recorded grant, make one for the destination's default Redshift key.
            grant = grant or f"migrator-{cluster_id}"[:63]
            created = aws.ensure_grant(client_set, copy.destination_region, grant)
        params: dict[str, Any] = {"ClusterIdentifier": cluster_id, "DestinationRegion": copy.destination_region}
        if copy.retention_period:
            params["RetentionPeriod"] = int(copy.retention_period)
        if copy.manual_retention_period:
            params["ManualSnapshotRetentionPeriod"] = int(copy.manual_retention_period)
        if grant:
            params["SnapshotCopyGrantName"] = grant
        aws.call(f"EnableSnapshotCopy {cluster_id}",
                 lambda: client_set.client("redshift").enable_snapshot_copy(**params))
        return {"params": params, "grant_created": created}

    def took_effect() -> dict[str, Any] | None:
        now = aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id))
        return {"found": now.to_dict()} if now is not None else None

    return once(ctx, copy_key(cluster_id, action), {"cluster_id": cluster_id, **record}, send, took_effect)
