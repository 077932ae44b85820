"""Redshift control-plane helpers: describe and wait with backoff, cross-region
snapshot-copy settings, KMS key resolution, and the CloudWatch write check.

Nothing here touches the checkpoint store; strategies record what these return.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.errors import aws_error, describe, error_code

from migrator.aws.clients import AwsClients
from migrator.errors import PreflightFailed, RemoteError
from migrator.retry import Backoff, wait_until

#: Pauses between polls of a long control-plane operation: quick at first, then every 15 s at most
#: (rehearsals against the sandbox, whose operations take seconds, lower the cap through this variable).
POLL_CAP_ENV = "MIGRATOR_AWS_POLL_CAP_SECONDS"
POLL = Backoff(base=0.25, cap=float(os.environ.get(POLL_CAP_ENV) or 15.0))
RA3_PREFIX = "ra3."


def call(what: str, fn: Callable[[], Any]) -> Any:
    """One AWS call; its failure becomes the matching MigratorError (see aws_error)."""
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, what) from None


# -- clusters -------------------------------------------------------------------------------

def describe_cluster(clients: AwsClients, cluster_id: str) -> dict[str, Any] | None:
    """The cluster as DescribeClusters shows it, or None when no such cluster exists."""
    try:
        found = clients.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)["Clusters"]
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFound":
            return None
        raise aws_error(exc, f"DescribeClusters {cluster_id}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"DescribeClusters {cluster_id}") from None
    return found[0] if found else None


def require_cluster(clients: AwsClients, cluster_id: str) -> dict[str, Any]:
    cluster = describe_cluster(clients, cluster_id)
    if cluster is None:
        raise RemoteError(f"cluster {cluster_id} does not exist")
    return cluster


def describe_resize(clients: AwsClients, cluster_id: str) -> dict[str, Any] | None:
    """DescribeResize's figures, or None when the cluster has no resize on record."""
    try:
        answer: dict[str, Any] = clients.client("redshift").describe_resize(ClusterIdentifier=cluster_id)
    except ClientError as exc:
        if error_code(exc) in ("ResizeNotFound", "ResizeNotFoundFault"):
            return None
        raise RemoteError(f"DescribeResize {cluster_id} failed: {describe(exc)}") from None
    answer.pop("ResponseMetadata", None)
    return answer


def wait_for_cluster(clients: AwsClients, cluster_id: str, ready: Callable[[dict[str, Any] | None], bool], *,
                     what: str, timeout: float = 6 * 3600, should_stop: Callable[[], bool] = lambda: False,
                     on_poll: Callable[[dict[str, Any] | None], None] | None = None,
                     backoff: Backoff = POLL) -> dict[str, Any] | None:
    """Poll DescribeClusters until ``ready(cluster)``; returns the last description."""
    def check() -> tuple[dict[str, Any] | None] | None:
        cluster = describe_cluster(clients, cluster_id)
        if on_poll is not None:
            on_poll(cluster)
        return (cluster,) if ready(cluster) else None

    return wait_until(check, what=what, timeout=timeout, backoff=backoff, should_stop=should_stop)[0]


def is_available(cluster: dict[str, Any] | None) -> bool:
    return cluster is not None and cluster.get("ClusterStatus") == "available"


def wait_available(clients: AwsClients, cluster_id: str, *, what: str | None = None,
                   should_stop: Callable[[], bool] = lambda: False, timeout: float = 6 * 3600) -> dict[str, Any]:
    found = wait_for_cluster(clients, cluster_id, is_available, what=what or f"cluster {cluster_id} to be available",
                             should_stop=should_stop, timeout=timeout)
    assert found is not None
    return found


def encryption_of(cluster: dict[str, Any]) -> tuple[bool, str | None]:
    """(encrypted, key ARN or None) as DescribeClusters reports it."""
    return bool(cluster.get("Encrypted")), cluster.get("KmsKeyId") or None


# -- snapshot copy --------------------------------------------------------------------------

@dataclass(frozen=True)
class SnapshotCopy:
    """Cross-region snapshot copy settings, recorded before the tool disables them."""

    destination_region: str
    retention_period: int | None
    manual_retention_period: int | None
    grant_name: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SnapshotCopy":
        return cls(str(data["destination_region"]), data.get("retention_period"),
                   data.get("manual_retention_period"), data.get("grant_name"))


def snapshot_copy_of(cluster: dict[str, Any]) -> SnapshotCopy | None:
    status = cluster.get("ClusterSnapshotCopyStatus")
    if not status or not status.get("DestinationRegion"):
        return None
    return SnapshotCopy(status["DestinationRegion"], status.get("RetentionPeriod"),
                        status.get("ManualSnapshotRetentionPeriod"), status.get("SnapshotCopyGrantName") or None)


def snapshot_copy_steps(cluster_id: str, copy: SnapshotCopy, region: str) -> str:
    """What an operator does by hand when the tool is not allowed to touch snapshot copy."""
    grant = f" --snapshot-copy-grant-name {copy.grant_name}" if copy.grant_name else ""
    retention = f" --retention-period {copy.retention_period}" if copy.retention_period else ""
    return (f"cross-region snapshot copy of {cluster_id} to {copy.destination_region} is on; either set "
            f"target.handle_snapshot_copy = true to let migrator disable and restore it, or: 1) "
            f"`aws redshift disable-snapshot-copy --region {region} --cluster-identifier {cluster_id}`; "
            f"2) re-run migrator; 3) afterwards `aws redshift enable-snapshot-copy --region {region} "
            f"--cluster-identifier {cluster_id} --destination-region {copy.destination_region}{retention}{grant}` "
            f"(a KMS-encrypted cluster needs a snapshot-copy grant in {copy.destination_region})")


def grant_exists(clients: AwsClients, region: str, name: str) -> bool:
    try:
        grants = clients.client("redshift", region).describe_snapshot_copy_grants(SnapshotCopyGrantName=name)
    except ClientError as exc:
        if "NotFound" in error_code(exc):
            return False
        raise RemoteError(f"DescribeSnapshotCopyGrants {name} in {region} failed: {describe(exc)}") from None
    return any(g.get("SnapshotCopyGrantName") == name for g in grants.get("SnapshotCopyGrants", []))


def ensure_grant(clients: AwsClients, region: str, name: str, kms_key_id: str | None = None) -> bool:
    """Create the snapshot-copy grant in ``region`` unless it exists; True when created."""
    if grant_exists(clients, region, name):
        return False
    params: dict[str, Any] = {"SnapshotCopyGrantName": name}
    if kms_key_id:
        params["KmsKeyId"] = kms_key_id
    call(f"CreateSnapshotCopyGrant {name} in {region}",
         lambda: clients.client("redshift", region).create_snapshot_copy_grant(**params))
    return True


# -- KMS ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KmsKey:
    arn: str
    key_id: str
    state: str
    region: str


def bucket_region(location_constraint: str | None) -> str:
    """The region a bucket is in, from GetBucketLocation's LocationConstraint: none for us-east-1,
    the legacy "EU" for eu-west-1 (API GetBucketLocation), else the region's own name."""
    if not location_constraint:
        return "us-east-1"
    return {"EU": "eu-west-1"}.get(location_constraint, location_constraint)


def arn_region(ref: str) -> str | None:
    parts = ref.split(":")
    return parts[3] if ref.startswith("arn:") and len(parts) >= 6 else None


def resolve_kms_key(clients: AwsClients, ref: str, cluster_region: str) -> tuple[KmsKey | None, list[str]]:
    """The key behind an id, ARN or alias, and what keeps Redshift in ``cluster_region`` from using it."""
    region = arn_region(ref) or cluster_region
    try:
        meta = clients.client("kms", region).describe_key(KeyId=ref)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None, [f"KMS key {ref} does not exist in region {region}"]
        return None, [f"KMS key {ref} cannot be read: {describe(exc)}"]
    except BotoCoreError as exc:
        return None, [f"KMS key {ref} cannot be read: {describe(exc)}"]
    key = KmsKey(meta["Arn"], meta["KeyId"], str(meta.get("KeyState", "Enabled")), arn_region(meta["Arn"]) or region)
    problems = []
    if key.region != cluster_region:
        problems.append(f"KMS key {key.arn} is in region {key.region}; the cluster is in {cluster_region} "
                        "(Redshift needs a key in the cluster's own region)")
    if key.state != "Enabled" or not meta.get("Enabled", True):
        problems.append(f"KMS key {key.arn} is not enabled (state {key.state})")
    return key, problems


# -- CloudWatch -----------------------------------------------------------------------------

def max_write_iops(clients: AwsClients, cluster_id: str, seconds: float,
                   now: datetime | None = None) -> tuple[float | None, int]:
    """Highest WriteIOPS datapoint over the last ``seconds`` and how many datapoints there were."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=seconds)
    answer = call(f"GetMetricStatistics WriteIOPS {cluster_id}", lambda: clients.client("cloudwatch")
                  .get_metric_statistics(Namespace="AWS/Redshift", MetricName="WriteIOPS",
                                         Dimensions=[{"Name": "ClusterIdentifier", "Value": cluster_id}],
                                         StartTime=start, EndTime=end + timedelta(seconds=60), Period=60,
                                         Statistics=["Maximum", "SampleCount"]))
    points = answer.get("Datapoints", [])
    if not points:
        return None, 0
    return max(float(p["Maximum"]) for p in points), int(sum(p.get("SampleCount", 1) for p in points))


# -- ownership: what the tool may delete ----------------------------------------------------

#: Tag on every cluster the tool creates (value: the migration's name).
OWNER_TAG = "migrator:migration"
#: Tag the tool puts on a source before renaming it away (value: the migration's name), so that
#: decommission can prove the old cluster is the one this migration retired.
RETIRED_TAG = "migrator:retired-by"
MAX_TAGS = 50
_RESERVED_TAG_PREFIX = "aws:"


def migration_tags(source_tags: list[dict[str, str]] | None, migration: str) -> list[dict[str, str]]:
    """Tags for a cluster the tool creates: the source's own (without AWS-reserved `aws:` keys,
    which CreateCluster refuses, and without any earlier migrator tags) plus the owner tag."""
    kept = [{"Key": t["Key"], "Value": t.get("Value", "")} for t in source_tags or []
            if not t["Key"].startswith(_RESERVED_TAG_PREFIX) and not t["Key"].startswith("migrator:")]
    tags = kept + [{"Key": OWNER_TAG, "Value": migration}]
    if len(tags) > MAX_TAGS:
        raise RemoteError(f"the source carries {len(kept)} tags; with migrator's owner tag that is more than the "
                          f"{MAX_TAGS} Redshift allows", hint="remove a tag from the source cluster, then re-run")
    return tags


def tag_value(cluster: dict[str, Any] | None, key: str) -> str | None:
    for tag in (cluster or {}).get("Tags") or []:
        if tag.get("Key") == key:
            return str(tag.get("Value", ""))
    return None


def cluster_arn(clients: AwsClients, cluster_id: str) -> str:
    """arn:<partition>:redshift:<region>:<account>:cluster:<id> (DescribeClusters does not return it)."""
    account = call("GetCallerIdentity", lambda: clients.client("sts").get_caller_identity())["Account"]
    region = clients.region
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:redshift:{region}:{account}:cluster:{cluster_id}"


def tag_cluster(clients: AwsClients, cluster_id: str, tags: dict[str, str]) -> None:
    """CreateTags on a cluster (adds or overwrites the given keys)."""
    arn = cluster_arn(clients, cluster_id)
    call(f"CreateTags {cluster_id}", lambda: clients.client("redshift").create_tags(
        ResourceName=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]))


@dataclass(frozen=True)
class Ownership:
    cluster_id: str
    owned: bool
    reasons: tuple[str, ...] = ()

    def require(self, action: str) -> None:
        if not self.owned:
            raise PreflightFailed(f"refusing to {action} cluster {self.cluster_id}: " + "; ".join(self.reasons),
                                  hint="migrator deletes only clusters this migration created (recorded and tagged); "
                                       "delete it yourself if you are sure")


def ownership(clients: AwsClients, cluster_id: str, migration: str, *,
              recorded: dict[str, Any] | None, tag_key: str = OWNER_TAG) -> Ownership:
    """May the tool delete ``cluster_id``? Only when the store recorded that this migration created
    (or retired) it, ``recorded`` (the recorded action's response, naming the cluster, or None), AND
    the cluster carries ``tag_key`` = ``migration``. Either alone is not enough: a record can outlive
    its cluster and a new one reuse the name; a tag can be copied onto another cluster."""
    reasons = []
    if not recorded:
        reasons.append(f"the store has no record of migration {migration!r} creating it")
    elif recorded.get("cluster_id") not in (None, cluster_id):
        reasons.append(f"the recorded creation is of {recorded.get('cluster_id')}, not {cluster_id}")
    cluster = describe_cluster(clients, cluster_id)
    if cluster is None:
        reasons.append("it does not exist")
    else:
        found = tag_value(cluster, tag_key)
        if found != migration:
            reasons.append(f"it does not carry the tag {tag_key}={migration}"
                           + (f" (found {tag_key}={found})" if found is not None else ""))
    return Ownership(cluster_id, not reasons, tuple(reasons))


def final_snapshot_id(cluster_id: str, migration: str) -> str:
    """A deterministic final-snapshot name (the same after a crash and resume): letters, digits and
    single hyphens, starting with a letter, at most 255 characters."""
    raw = f"{cluster_id}-final-{migration}".lower()
    cleaned = re.sub(r"[^a-z0-9]+", "-", raw).strip("-")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    if not cleaned[:1].isalpha():
        cleaned = "s-" + cleaned
    return cleaned[:255].rstrip("-")


def delete_owned_cluster(clients: AwsClients, cluster_id: str, migration: str, *, recorded: dict[str, Any] | None,
                         tag_key: str = OWNER_TAG, final_snapshot: str | None = None,
                         skip_final_snapshot: bool = False) -> dict[str, Any]:
    """DeleteCluster, only after ownership() allows it, and with a final snapshot unless the caller
    explicitly skips it. Returns what was sent (record it before calling: the call is destructive)."""
    ownership(clients, cluster_id, migration, recorded=recorded, tag_key=tag_key).require("delete")
    request: dict[str, Any] = {"ClusterIdentifier": cluster_id}
    if skip_final_snapshot:
        request["SkipFinalClusterSnapshot"] = True
    else:
        request.update(SkipFinalClusterSnapshot=False,
                       FinalClusterSnapshotIdentifier=final_snapshot or final_snapshot_id(cluster_id, migration))
    call(f"DeleteCluster {cluster_id}", lambda: clients.client("redshift").delete_cluster(**request))
    return request


def hourly_write_peaks(clients: AwsClients, cluster_id: str, days: int, now: datetime | None = None) -> list[float]:
    """The highest WriteIOPS of each hour over the last ``days`` (hours without data are absent)."""
    end = now or datetime.now(UTC)
    answer = call(f"GetMetricStatistics WriteIOPS {cluster_id}", lambda: clients.client("cloudwatch")
                  .get_metric_statistics(Namespace="AWS/Redshift", MetricName="WriteIOPS",
                                         Dimensions=[{"Name": "ClusterIdentifier", "Value": cluster_id}],
                                         StartTime=end - timedelta(days=days), EndTime=end, Period=3600,
                                         Statistics=["Maximum"]))
    return [float(p["Maximum"]) for p in answer.get("Datapoints", [])]


def datashares_of(clients: AwsClients, namespace_arn: str | None) -> list[dict[str, Any]] | None:
    """Datashares the namespace produces, or None when they cannot be listed (no namespace, no permission)."""
    if not namespace_arn:
        return None
    try:
        answer = clients.client("redshift").describe_data_shares_for_producer(ProducerArn=namespace_arn)
    except Exception:  # a planning aid: an account or stand-in without the API must not stop the plan
        return None
    return list(answer.get("DataShares", []))
