"""Glue shared by the strategies: AWS clients from the config, remote actions
recorded before and after (and re-attached on resume), cluster connections, the
baseline kept in the store, progress events and the write-freeze guard."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection, Settings
from migrator.errors import MigratorError, PreflightFailed, RemoteError, SecurityError, TransientError, ValidationMismatch
from migrator.warehouse import baseline as bl

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext
    from migrator.strategies.probe import ProbeReport

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

    A call that fails is looked at the same way before its error counts: AWS may have made the
    change and lost only the answer, and botocore's automatic retry of that request then meets
    the change itself (ClusterAlreadyExists, ClusterNotFound after a rename, InvalidClusterState
    while it reboots or deletes). ``took_effect`` must therefore recognise only this migration's
    own effect (its tag, its names), never a look-alike somebody else made.
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
    try:
        response = dict(send())
    except MigratorError as exc:
        try:
            seen = took_effect()
        except MigratorError:
            seen = None  # cannot tell: the call's own error is the one to report
        if seen is None:
            raise
        log.info("%s took effect although its answer was an error (%s)", key, exc.one_line())
        store.add_event(migration, "migration", "answer_lost", {"action": key, "error": exc.one_line()},
                        state=migration.phase)
        response = {**seen, "answer_lost": True}
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


#: Node types CreateCluster/RestoreFromClusterSnapshot no longer accept (retired generations).
RETIRED_NODE_PREFIXES = ("dc1.", "ds1.", "ds2.")
#: The ports an RA3 (and RG) cluster may listen on (CreateCluster Port); other node types 1150-65535.
RA3_PORT_RANGES = ((5431, 5455), (8191, 8215))


def port_allowed(node_type: str, port: int) -> bool:
    if node_type.startswith(("ra3.", "rg.")):
        return any(low <= port <= high for low, high in RA3_PORT_RANGES)
    return 1150 <= port <= 65535


@dataclass(frozen=True)
class Mirror:
    """The new cluster's request as a copy of the source, what the configuration overrode, what
    cannot be copied (only reported) and what stops the copy until the configuration says how."""

    request: dict[str, Any]
    overridden: tuple[str, ...] = ()
    reported: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def mirror_source(source: Mapping[str, Any], settings: Settings, *, restore: bool) -> Mirror:
    """CreateCluster (``restore=False``) or RestoreFromClusterSnapshot parameters copying the source:
    node type and count, port, parameter/subnet/security groups, IAM roles and the default one,
    placement, public access, enhanced VPC routing, Multi-AZ, retention, maintenance track and window,
    snapshot schedule. Tags (CreateCluster) and logging (EnableLogging) are applied separately."""
    target = settings.target
    source_id = str(source.get("ClusterIdentifier"))
    request: dict[str, Any] = {}
    overridden: list[str] = []
    reported: list[str] = []
    problems: list[str] = []
    node_type = str(source.get("NodeType") or "")
    if target.node_type and target.node_type != node_type:
        overridden.append(f"node type {node_type} -> {target.node_type} (target.node_type)")
        node_type = target.node_type
    elif node_type.startswith(RETIRED_NODE_PREFIXES):
        problems.append(f"source {source_id} runs retired node type {node_type}, which a new cluster cannot use: "
                        "set target.node_type (e.g. \"ra3.xlplus\") and, for RA3, target.cluster_port")
    if node_type:
        request["NodeType"] = node_type
    nodes = int(source.get("NumberOfNodes") or 1)
    if restore:
        request["NumberOfNodes"] = nodes
    else:
        request.update({"ClusterType": "multi-node", "NumberOfNodes": nodes} if nodes > 1
                       else {"ClusterType": "single-node"})
    port = (source.get("Endpoint") or {}).get("Port")
    if target.cluster_port:
        if port and int(port) != target.cluster_port:
            overridden.append(f"port {port} -> {target.cluster_port} (target.cluster_port)")
        port = target.cluster_port
    elif settings.migration.aws_endpoint_url is not None:
        port = None  # an endpoint override (the sandbox) gives each name its own address: nothing to keep
    if port:
        if port_allowed(node_type, int(port)):
            request["Port"] = int(port)  # clients keep their port after the swap
        else:
            problems.append(f"port {port} of {source_id} is not allowed for node type {node_type} (RA3 listens only "
                            "on 5431-5455 or 8191-8215): set target.cluster_port and tell clients the new port")
    for key in ("ClusterSubnetGroupName", "PreferredMaintenanceWindow", "AvailabilityZone",
                "MaintenanceTrackName", "SnapshotScheduleIdentifier", "DefaultIamRoleArn"):
        if source.get(key):
            request[key] = source[key]
    for key in ("PubliclyAccessible", "EnhancedVpcRouting"):
        if key in source:
            request[key] = bool(source[key])
    if "MultiAZ" in source:
        request["MultiAZ"] = str(source["MultiAZ"]).lower() in ("enabled", "true")
    for key in ("AutomatedSnapshotRetentionPeriod", "ManualSnapshotRetentionPeriod"):
        if source.get(key) is not None:
            request[key] = int(source[key])
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
    if request.get("AvailabilityZone") and request.get("MultiAZ"):
        del request["AvailabilityZone"]  # Multi-AZ places the nodes itself
    eip = (source.get("ElasticIpStatus") or {}).get("ElasticIp")
    if eip:
        reported.append(f"Elastic IP {eip} stays with {source_id} (an address belongs to one cluster): move it to "
                        "the new cluster after cutover (`aws redshift modify-cluster --elastic-ip`) if clients use it")
    return Mirror(request, tuple(overridden), tuple(reported), tuple(problems))


def rename_notes(client_set: AwsClients, source: Mapping[str, Any]) -> list[str]:
    """What is bound to the source itself (its namespace, its custom domain) and will not follow
    the name to the new cluster at cutover."""
    source_id = str(source.get("ClusterIdentifier"))
    notes: list[str] = []
    if source.get("CustomDomainName"):
        notes.append(f"custom domain {source['CustomDomainName']} is associated with {source_id} itself: "
                     "associate it with the new cluster after cutover (create-custom-domain-association)")
    namespace = source.get("ClusterNamespaceArn")
    if namespace:
        try:
            shares = client_set.brief_client("redshift", timeout=10, attempts=2).describe_data_shares_for_producer(ProducerArn=namespace)
            names = [str(d.get("DataShareArn", "")).rsplit("/", 1)[-1] for d in shares.get("DataShares") or []]
            if names:
                notes.append(f"datashares {', '.join(names)} are produced by namespace {namespace}: the new cluster "
                             "has a new namespace, so recreate and re-authorize them there (consumers re-associate)")
        except Exception as exc:  # noqa: BLE001 - not knowing is itself the note
            notes.append(f"datashares produced by {source_id} could not be listed ({type(exc).__name__}): check "
                         "them by hand; they stay with the old namespace")
    notes.append(f"anything bound to {source_id}'s namespace (datashares, Redshift-managed VPC endpoints, "
                 "zero-ETL integrations) stays with the old cluster")
    return notes


def mirror_logging(client_set: AwsClients, source_id: str, target_id: str) -> dict[str, Any]:
    """Audit logging is not a CreateCluster parameter: EnableLogging on the new cluster as on the
    source (idempotent, so a resumed run repeats it)."""
    redshift = client_set.client("redshift")
    status = aws.call(f"DescribeLoggingStatus {source_id}",
                      lambda: redshift.describe_logging_status(ClusterIdentifier=source_id))
    if not status.get("LoggingEnabled"):
        return {"logging": False}
    params: dict[str, Any] = {"ClusterIdentifier": target_id}
    for key in ("BucketName", "S3KeyPrefix", "LogDestinationType", "LogExports"):
        if status.get(key):
            params[key] = status[key]
    aws.call(f"EnableLogging {target_id}", lambda: redshift.enable_logging(**params))
    return {"logging": True, **{k: v for k, v in params.items() if k != "ClusterIdentifier"}}


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


# -- the new cluster's encryption -----------------------------------------------------------

@dataclass(frozen=True)
class EncryptionWanted:
    """What the configuration asks of the new cluster, with the key resolved to its ARN."""

    kind: str  # "kms", "hsm" or "none"
    kms_key_arn: str | None = None
    hsm_certificate: str | None = None
    hsm_configuration: str | None = None

    def describe(self) -> str:
        if self.kind == "hsm":
            return f"HSM {self.hsm_configuration} / {self.hsm_certificate} (status active)"
        if self.kind == "kms":
            return f"Encrypted=true KmsKeyId={self.kms_key_arn or '(any KMS key)'}"
        return "Encrypted=false"


def encryption_wanted(settings: Settings, client_set: AwsClients) -> EncryptionWanted:
    target = settings.target
    if target.encryption == "hsm":
        return EncryptionWanted("hsm", hsm_certificate=target.hsm_client_certificate,
                                hsm_configuration=target.hsm_configuration)
    if target.encryption == "none":
        return EncryptionWanted("none")
    if not target.kms_key_id:
        return EncryptionWanted("kms")
    key, problems = aws.resolve_kms_key(client_set, target.kms_key_id, settings.migration.region)
    if key is None:
        raise SecurityError(f"cannot check the new cluster's encryption: {'; '.join(problems)}",
                            hint="make target.kms_key_id readable (kms:DescribeKey), then re-run")
    return EncryptionWanted("kms", kms_key_arn=key.arn)


def encryption_mismatch(cluster: Mapping[str, Any], want: EncryptionWanted) -> str | None:
    """Why ``cluster`` (a DescribeClusters answer) is not encrypted as wanted, naming both sides; or None."""
    encrypted, key = aws.encryption_of(dict(cluster))
    hsm = cluster.get("HsmStatus") or {}
    found = f"Encrypted={str(encrypted).lower()} KmsKeyId={key or '(none)'}"
    if want.kind == "hsm":
        if not (encrypted and hsm.get("Status") == "active"
                and hsm.get("HsmConfigurationIdentifier") == want.hsm_configuration
                and hsm.get("HsmClientCertificateIdentifier") == want.hsm_certificate):
            return (f"reports {found} HSM configuration {hsm.get('HsmConfigurationIdentifier') or '(none)'} / "
                    f"certificate {hsm.get('HsmClientCertificateIdentifier') or '(none)'} status "
                    f"{hsm.get('Status') or '(none)'}, not {want.describe()}")
        return None
    if want.kind == "none":
        return None if not encrypted else f"reports {found}, not {want.describe()}"
    if not encrypted or hsm.get("Status") or (want.kms_key_arn and key != want.kms_key_arn):
        return f"reports {found}, not {want.describe()}"
    return None


def new_cluster_id(ctx: "PhaseContext") -> str:
    """Where the new cluster is now: its own name, or (after cutover renamed it) the source's name,
    which it then holds with this migration's owner tag."""
    settings = ctx.config.settings
    client_set = clients(ctx)
    target_id, source_id = settings.target.cluster_id, settings.source.cluster_id
    if aws.describe_cluster(client_set, target_id) is not None:
        return target_id
    renamed = aws.describe_cluster(client_set, source_id)
    if renamed is not None and aws.tag_value(renamed, aws.OWNER_TAG) == ctx.migration.name:
        return source_id
    raise RemoteError(f"the new cluster {target_id} does not exist (nor under the name {source_id} with the tag "
                      f"{aws.OWNER_TAG}={ctx.migration.name})", hint="`migrator status` and `migrator history` "
                      "show what happened to it")


def check_new_cluster_encryption(ctx: "PhaseContext", when: str, cluster_id: str | None = None) -> dict[str, Any]:
    """Refuse (SecurityError, exit 11) to go on unless the new cluster is encrypted as configured: the
    resolved key ARN equal to the configured key's, or the configured HSM active. Called when the new
    cluster is ready (before any data moves) and again before cutover."""
    client_set = clients(ctx)
    cluster_id = cluster_id or new_cluster_id(ctx)
    want = encryption_wanted(ctx.config.settings, client_set)
    cluster = aws.require_cluster(client_set, cluster_id)
    mismatch = encryption_mismatch(cluster, want)
    detail = {"cluster_id": cluster_id, "when": when, "wanted": want.describe(),
              "found": cluster_summary(cluster), "ok": mismatch is None}
    ctx.store.add_event(ctx.migration, "migration", "encryption_checked", detail, state=ctx.migration.phase)
    if mismatch is not None:
        raise SecurityError(f"{when}: new cluster {cluster_id} {mismatch}",
                            hint="nothing was moved past this point; delete the new cluster "
                                 "(`migrator rollback --delete-target`) and check the key or HSM settings")
    return detail


# -- preflight shared by every strategy --------------------------------------------------------

def source_problems(ctx: "PhaseContext", cluster_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The source as DescribeClusters shows it, and what would stop a later phase: not a provisioned
    cluster (missing, or a Serverless workgroup), paused or in an intermediate status, cross-region
    snapshot copy the tool may not handle, and (when it can be reached) a login lacking grants."""
    from migrator.aws import preflight as checks

    settings = ctx.config.settings
    client_set = clients(ctx)
    named = checks.provisioned_cluster_named(_HostPrefixFree(client_set), cluster_id)
    if named.cluster is None:
        notes = f" ({'; '.join(named.notes)})" if named.notes else ""
        return None, [f"source: {named.problem}{notes}"]
    cluster = named.cluster
    problems: list[str] = []
    condition = checks.cluster_condition(cluster, cluster_id, settings.migration.region)
    if condition.problem:
        problems.append(f"source: {condition.problem}")
    copy_problem = snapshot_copy_problem(settings, cluster)
    if copy_problem:
        problems.append(copy_problem)
    if condition.readiness == checks.Readiness.READY:
        problems += login_problems(settings, client_set, cluster_id, "source", settings.source)
    return cluster, problems


def login_problems(settings: Settings, client_set: AwsClients, cluster_id: str, where: str,
                   section: ConnectionSection) -> list[str]:
    """What the configured login lacks to read the system views truthfully (a non-superuser)."""
    from migrator.warehouse.connection import Session

    conn = connect(settings, client_set, cluster_id, where=where, conn=section)
    try:
        conn.autocommit = True
        return access_lines(Session(conn), where)
    finally:
        conn.close()


def access_lines(session: Any, where: str) -> list[str]:
    """One preflight line per missing grant of ``session``'s user."""
    from migrator.warehouse.access import access_problems

    return [f"{where} user lacks access to {p.describe()}" for p in access_problems(session)]


def staging_problems(client_set: AwsClients, bucket: str) -> list[str]:
    """The staging bucket must be shielded from public access at the account or the bucket level."""
    from migrator.aws import preflight as checks

    problem = checks.staging_public_access(_HostPrefixFree(client_set), bucket).problem()
    return [problem] if problem else []


class _HostPrefixFree(AwsClients):
    """Clients for the preflight helpers. S3 Control puts the account id in front of the host name (`<account>.s3-control...`); an
    endpoint override (the sandbox, an endpoint given as an address) cannot take that prefix, so
    with an override the request goes to the override's own host."""

    def __init__(self, inner: AwsClients) -> None:
        super().__init__(inner.region, inner.endpoint_url, inner.session)
        self._inner = inner

    def client(self, service: str, region: str | None = None) -> Any:
        if service == "redshift-serverless":
            # Only asked to explain a missing cluster: a quick answer or none (then a note says so),
            # never minutes of retries before the preflight report.
            return self._inner.brief_client(service, timeout=5, attempts=3, region=region)
        found = self._inner.client(service, region)
        if service == "s3control" and self.endpoint_url and not getattr(found, "_migrator_no_prefix", False):
            found.meta.events.register("before-sign.s3-control", _strip_account_prefix)
            found._migrator_no_prefix = True
        return found


def _strip_account_prefix(request: Any, **_: Any) -> None:
    request.url = re.sub(r"^(https?://)\d{12}\.", r"\1", request.url)


def target_credentials_problems(ctx: "PhaseContext", section: ConnectionSection, *,
                                creates_target: bool) -> list[str]:
    """IAM-auth credentials cannot exist before the target does (and CreateCluster needs a password)."""
    from migrator.aws import preflight as checks

    problem = checks.target_credentials_problem(clients(ctx), section, needs_master_password=creates_target)
    return [problem] if problem else []


# -- the statement-shape probe (strategies.probe), for `migrator probe` and the unload-copy preflight --

def probe_source(settings: Settings, client_set: AwsClients) -> "ProbeReport":
    """Every statement shape the migration will use, tried on the source with one sampled row per
    type group (nothing left behind); the data path only for the unload-copy route."""
    from migrator.warehouse.connection import Session, close_quietly
    from migrator.strategies.probe import UNLOAD_COPY, DataPath, run_probe

    route = settings.migration.strategy
    path = None
    if route == UNLOAD_COPY:
        assert settings.staging is not None  # the config requires it for this route
        path = DataPath(settings.staging.s3_uri, settings.migration.name, settings.staging.iam_role_arn,
                        settings.staging.kms_key_id, client_set.client("s3"), client_set.client("kms"))
    opened: list[Any] = []
    lock = threading.Lock()

    def open_session() -> Session:
        conn = connect(settings, client_set, settings.source.cluster_id)
        with lock:
            opened.append(conn)
        conn.autocommit = True
        return Session(conn)

    try:
        first = open_session()
        return run_probe(first, route=route, include=settings.tables.include, exclude=settings.tables.exclude,
                         data_path=path, open_session=open_session, workers=settings.tables.concurrency)
    finally:
        for conn in opened:
            close_quietly(conn)


def probe_problems(ctx: "PhaseContext") -> list[str]:
    """The probe as part of preflight: its outcome goes to the history; one preflight line per
    failed shape."""
    report = probe_source(ctx.config.settings, clients(ctx))
    ctx.store.add_event(ctx.migration, "migration", "probe", report.to_dict(), state=ctx.migration.phase)
    return [f"probe: {line}" for line in report.failure_lines()]
