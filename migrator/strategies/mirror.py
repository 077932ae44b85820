"""The new cluster as a copy of the source: the CreateCluster or RestoreFromClusterSnapshot
request, audit logging, and what stays behind with the source's name and namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import Settings


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
    snapshot schedule, version upgrades, IP address type, AZ relocation, a Secrets-Manager-managed
    admin password (and its key). Tags (CreateCluster) and logging (EnableLogging) are applied separately."""
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
    extra = str(source.get("ExtraComputeForAutomaticOptimization") or "").lower()
    if extra in ("true", "false"):
        if restore:  # RestoreFromClusterSnapshot has no such parameter
            if extra == "true":
                reported.append(f"{source_id} allocates extra compute for automatic optimization: turn it on for the "
                                "new cluster after cutover (modify-cluster --extra-compute-for-automatic-optimization)")
        else:
            request["ExtraComputeForAutomaticOptimization"] = extra == "true"
    if "AllowVersionUpgrade" in source:
        request["AllowVersionUpgrade"] = bool(source["AllowVersionUpgrade"])
    if source.get("IpAddressType"):
        request["IpAddressType"] = source["IpAddressType"]
    relocation = str(source.get("AvailabilityZoneRelocationStatus") or "").lower()
    if relocation:
        request["AvailabilityZoneRelocation"] = relocation in ("enabled", "pending_enabling")
    if source.get("MasterPasswordSecretArn"):
        secret_key = source.get("MasterPasswordSecretKmsKeyId")
        if restore:
            # The restored cluster would keep the snapshot's managed password (known to no one): it
            # manages its own, as the source does, with the source's key; the tool logs in with
            # GetClusterCredentials.
            request["ManageMasterPassword"] = True
            if secret_key:
                request["MasterPasswordSecretKmsKeyId"] = secret_key
            if not target.iam_auth:
                problems.append(f"source {source_id} keeps its admin password in Secrets Manager "
                                "(ManageMasterPassword), and so will the restored cluster: no configured password "
                                "can log in to it; set target.iam_auth = true")
        else:
            # CreateCluster gets the configured password (the tool must log in with it to load data).
            key = f" --master-password-secret-kms-key-id {secret_key}" if secret_key else ""
            overridden.append(f"admin password: the configured one instead of Secrets Manager "
                              f"(ManageMasterPassword on {source_id}); after cutover run `aws redshift modify-cluster "
                              f"--cluster-identifier {source_id} --manage-master-password{key}`")
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
    notes += scheduled_action_notes(client_set, source_id)
    return notes


def scheduled_action_notes(client_set: AwsClients, source_id: str) -> list[str]:
    """Scheduled actions name their cluster by identifier (TargetAction), so after cutover they act
    on the new cluster, which then holds that name: said, not copied (copying would double them)."""
    try:
        pages = client_set.brief_client("redshift", timeout=10, attempts=2).get_paginator(
            "describe_scheduled_actions").paginate(Filters=[{"Name": "cluster-identifier", "Values": [source_id]}])
        actions = [a for page in pages for a in page.get("ScheduledActions") or []]
    except Exception as exc:  # noqa: BLE001 - not knowing is itself the note
        return [f"scheduled actions of {source_id} could not be listed ({type(exc).__name__}): check them by hand; "
                f"after cutover those naming {source_id} act on the new cluster"]
    if not actions:
        return []
    names = ", ".join(f"{a.get('ScheduledActionName')} ({next(iter(a.get('TargetAction') or {'?': 0}))})"
                      for a in actions)
    return [f"scheduled actions {names} name {source_id}: after cutover they act on the new cluster (which then "
            f"holds that name), none on the renamed-away source"]


def mirror_usage_limits(client_set: AwsClients, source_id: str, target_id: str) -> dict[str, Any]:
    """Usage limits belong to the cluster they were made for and stay with the source through the
    rename: the same limits on the new cluster (one per feature, limit type and period, so a
    resumed run makes none twice)."""
    redshift = client_set.client("redshift")

    def limits_of(cluster_id: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            pages = redshift.get_paginator("describe_usage_limits").paginate(ClusterIdentifier=cluster_id)
            return [u for page in pages for u in page.get("UsageLimits") or []]
        found: list[dict[str, Any]] = aws.call(f"DescribeUsageLimits {cluster_id}", read)
        return found

    def key(limit: Mapping[str, Any]) -> tuple[str, str, str]:
        return str(limit.get("FeatureType")), str(limit.get("LimitType")), str(limit.get("Period") or "monthly")

    have = {key(u) for u in limits_of(target_id)}
    copied = []
    for limit in limits_of(source_id):
        wanted = {"ClusterIdentifier": target_id, "FeatureType": limit["FeatureType"], "LimitType": limit["LimitType"],
                  "Amount": int(limit["Amount"]), "Period": limit.get("Period") or "monthly",
                  "BreachAction": limit.get("BreachAction") or "log"}
        if key(limit) not in have:
            aws.call(f"CreateUsageLimit {target_id} {limit['FeatureType']}",
                     lambda w=wanted: redshift.create_usage_limit(**w))  # type: ignore[misc]
        copied.append({k: v for k, v in wanted.items() if k != "ClusterIdentifier"})
    return {"usage_limits": copied}


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
