"""Glue shared by the strategies: AWS clients from the config, remote actions
recorded before and after (and re-attached on resume), cluster connections, the
baseline kept in the store, progress events and the write-freeze guard."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection, Settings
from migrator.errors import PreflightFailed, RemoteError, TransientError, ValidationMismatch
from migrator.warehouse import baseline as bl

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext

log = logging.getLogger("migrator.strategies")

BASELINE_KEY = "baseline"
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


def clients_for(settings: Settings) -> AwsClients:
    return AwsClients(settings.migration.region, settings.migration.aws_endpoint_url)


@lru_cache(maxsize=8)
def _clients(region: str, endpoint_url: str | None) -> AwsClients:
    return AwsClients(region, endpoint_url)


def clients(ctx: "PhaseContext") -> AwsClients:
    """One AwsClients (and so one boto3 client per service) for the whole run."""
    migration = ctx.config.settings.migration
    return _clients(migration.region, migration.aws_endpoint_url)


# -- remote actions -------------------------------------------------------------------------

def once(ctx: "PhaseContext", key: str, request: Mapping[str, Any], send: Callable[[], Mapping[str, Any]],
         took_effect: Callable[[], Mapping[str, Any] | None]) -> dict[str, Any]:
    """Make a remote call at most once per migration.

    The request is recorded before the call and the response after it. A record left
    ``pending`` by a crash means the call may or may not have reached AWS: ``took_effect``
    looks (describe calls) and, when it did, the action is re-attached instead of re-sent.
    """
    store, migration = ctx.store, ctx.migration
    found = store.get_action(migration, key)
    if found is not None and found.status == "done":
        return dict(found.response or {})
    if found is not None:
        seen = took_effect()
        if seen is not None:
            log.info("re-attached to %s (it reached AWS before the crash)", key)
            return dict(store.finish_action(migration, key, {**seen, "reattached": True}).response or {})
    else:
        store.begin_action(migration, key, request)
    response = dict(send())
    failpoints.hit("after_remote_call")
    return dict(store.finish_action(migration, key, response).response or {})


def recorded(ctx: "PhaseContext", key: str) -> dict[str, Any] | None:
    """The response of a finished action, or None."""
    found = ctx.store.get_action(ctx.migration, key)
    return dict(found.response or {}) if found is not None and found.status == "done" else None


def remember(ctx: "PhaseContext", key: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """Keep a computed fact (a baseline, recorded settings) under ``key``; the first value wins."""
    existing = recorded(ctx, key)
    if existing is not None:
        return existing
    ctx.store.begin_action(ctx.migration, key, {"kind": "record"})
    return dict(ctx.store.finish_action(ctx.migration, key, dict(value)).response or {})


def mirrored_placement(source: Mapping[str, Any]) -> dict[str, Any]:
    """The one provisioning request core: the new cluster mirrors the source's node type, placement,
    roles, security groups and parameter group (CreateCluster and RestoreFromClusterSnapshot share
    these parameter names)."""
    request: dict[str, Any] = {}
    for key in ("NodeType", "PreferredMaintenanceWindow", "ClusterSubnetGroupName"):
        if source.get(key):
            request[key] = source[key]
    roles = [r["IamRoleArn"] for r in source.get("IamRoles") or [] if r.get("IamRoleArn")]
    if roles:
        request["IamRoles"] = roles
    groups = [g["VpcSecurityGroupId"] for g in source.get("VpcSecurityGroups") or [] if g.get("VpcSecurityGroupId")]
    if groups:
        request["VpcSecurityGroupIds"] = groups
    params = [g["ParameterGroupName"] for g in source.get("ClusterParameterGroups") or []
              if g.get("ParameterGroupName")]
    if params:
        request["ClusterParameterGroupName"] = params[0]
    return request


def cluster_summary(cluster: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a DescribeClusters answer worth keeping in the store (JSON-safe)."""
    if cluster is None:
        return {"exists": False}
    return {"cluster_id": cluster.get("ClusterIdentifier"), "status": cluster.get("ClusterStatus"),
            "encrypted": bool(cluster.get("Encrypted")), "kms_key_id": cluster.get("KmsKeyId"),
            "node_type": cluster.get("NodeType"), "nodes": cluster.get("NumberOfNodes")}


# -- connections ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


def endpoint_of(client_set: AwsClients, cluster_id: str, conn: ConnectionSection | None = None) -> Endpoint:
    if conn is not None and conn.host and conn.cluster_id == cluster_id:
        return Endpoint(conn.host, conn.port or 5439)
    cluster = aws.require_cluster(client_set, cluster_id)
    endpoint = cluster.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise RemoteError(f"cluster {cluster_id} has no endpoint yet (status {cluster.get('ClusterStatus')})")
    return Endpoint(str(endpoint["Address"]), int(endpoint.get("Port") or 5439))


def connect(settings: Settings, client_set: AwsClients, cluster_id: str, *, where: str = "source",
            conn: ConnectionSection | None = None) -> Any:
    """A redshift_connector connection to ``cluster_id`` with the configured credentials: TLS with
    the section's sslmode (plaintext only for the local sandbox when the config says so), no
    client-side statement timeout, credentials resolved once per run. Errors are classified by
    warehouse.connection (a wrong password is not a transient failure)."""
    from migrator.warehouse.connection import connect_section

    section = conn or settings.source
    endpoint = endpoint_of(client_set, cluster_id, section)
    return connect_section(settings, section, endpoint.host, endpoint.port, where=where, aws=client_set)


def measure(settings: Settings, client_set: AwsClients, cluster_id: str,
            checksum: bl.Checksum | None = None) -> bl.Baseline:
    conn = connect(settings, client_set, cluster_id)
    try:
        return bl.take(conn, checksum)
    finally:
        conn.close()


def take_baseline(ctx: "PhaseContext", cluster_id: str, checksum: bl.Checksum | None = None) -> bl.Baseline:
    """The validation queries on ``cluster_id``, stored once; a resumed run keeps the first."""
    kept = recorded(ctx, BASELINE_KEY)
    if kept is not None:
        return bl.Baseline.from_dict(kept)
    measured = measure(ctx.config.settings, clients(ctx), cluster_id, checksum)
    return bl.Baseline.from_dict(remember(ctx, BASELINE_KEY, {**measured.to_dict(), "cluster_id": cluster_id}))


def stored_baseline(ctx: "PhaseContext") -> bl.Baseline:
    kept = recorded(ctx, BASELINE_KEY)
    if kept is None:
        raise ValidationMismatch("no baseline was recorded for this migration",
                                 hint="internal order problem: re-run from the baseline phase")
    return bl.Baseline.from_dict(kept)


def check_against_baseline(ctx: "PhaseContext", cluster_id: str, what: str,
                           checksum: bl.Checksum | None = None, *, conn: ConnectionSection | None = None,
                           hint: str = "find what wrote to the cluster; `migrator history` has the details"
                           ) -> bl.Baseline:
    """The one baseline comparison: measure ``cluster_id`` (logging in with ``conn`` when it is not
    the source, e.g. the new cluster), record the result as a `validation` event, refuse differences."""
    expected = stored_baseline(ctx)
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


def fail_preflight(problems: list[str], hint: str = "fix these and re-run; nothing was changed") -> None:
    """All problems in one line, each listed once (one key used for two purposes is one problem)."""
    problems = list(dict.fromkeys(problems))
    if problems:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise PreflightFailed(f"preflight found {count}: " + "; ".join(problems), hint=hint)


# -- cross-region snapshot copy -------------------------------------------------------------

def copy_key(cluster_id: str, what: str) -> str:
    return f"snapshot_copy:{cluster_id}:{what}"


def snapshot_copy_problem(settings: Settings, cluster: Mapping[str, Any]) -> str | None:
    """Preflight: snapshot copy on and the tool not allowed to handle it → the exact manual steps."""
    copy = aws.snapshot_copy_of(dict(cluster))
    if copy is None or settings.target.handle_snapshot_copy:
        return None
    return aws.snapshot_copy_steps(str(cluster["ClusterIdentifier"]), copy, settings.migration.region)


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
