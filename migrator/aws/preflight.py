"""Control-plane facts preflight needs, each as one function: whether the staging bucket is
shielded from public access (account or bucket level), whether a cluster can be worked on now
(paused, changing, failed), whether a name is a Serverless workgroup rather than a cluster,
cross-region snapshot copy, and target credentials that cannot exist before the target does.

Each returns facts or a problem sentence (what, where, what to do); none changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.clients import AwsClients
from migrator.aws.clusters import SnapshotCopy, describe_cluster, snapshot_copy_of, snapshot_copy_steps
from migrator.aws.errors import aws_error, describe, error_code
from migrator.config import ConnectionSection

# -- S3 public access block --------------------------------------------------------------------

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_NO_BLOCK = ("NoSuchPublicAccessBlockConfiguration",)


@dataclass(frozen=True)
class PublicAccess:
    """The public access block in force for a bucket: S3 applies the account's and the
    bucket's settings together, so a flag is on when either level turns it on."""

    bucket: str
    account: dict[str, bool] | None
    bucket_level: dict[str, bool] | None
    account_checked: bool = True

    @property
    def effective(self) -> dict[str, bool]:
        return {k: bool((self.account or {}).get(k)) or bool((self.bucket_level or {}).get(k))
                for k in PUBLIC_ACCESS_FLAGS}

    @property
    def open_flags(self) -> list[str]:
        return [k for k, on in self.effective.items() if not on]

    @property
    def covered_by(self) -> str:
        if all((self.account or {}).get(k) for k in PUBLIC_ACCESS_FLAGS):
            return "account"
        if all((self.bucket_level or {}).get(k) for k in PUBLIC_ACCESS_FLAGS):
            return "bucket"
        return "both" if not self.open_flags else "none"

    def problem(self) -> str | None:
        if not self.open_flags:
            return None
        unchecked = ("" if self.account_checked else
                     " (the account-level block could not be read: grant s3:GetAccountPublicAccessBlock)")
        return (f"staging bucket {self.bucket}: public access is not fully blocked at the account or bucket level "
                f"({', '.join(self.open_flags)} off){unchecked}; staged table data must never be public: "
                f"`aws s3api put-public-access-block --bucket {self.bucket} --public-access-block-configuration "
                "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`")


def _block(answer: dict[str, Any]) -> dict[str, bool]:
    config = answer.get("PublicAccessBlockConfiguration") or {}
    return {k: bool(config.get(k)) for k in PUBLIC_ACCESS_FLAGS}


def staging_public_access(clients: AwsClients, bucket: str, account_id: str | None = None) -> PublicAccess:
    """Account-level (S3 Control GetPublicAccessBlock) and bucket-level settings for ``bucket``."""
    account: dict[str, bool] | None = None
    account_checked = True
    try:
        account_id = account_id or clients.client("sts").get_caller_identity()["Account"]
        account = _block(clients.client("s3control").get_public_access_block(AccountId=account_id))
    except ClientError as exc:
        if error_code(exc) in _NO_BLOCK:
            account = None
        elif error_code(exc) in ("AccessDenied", "AccessDeniedException"):
            account_checked = False
        else:
            raise aws_error(exc, f"GetPublicAccessBlock for account {account_id}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, "GetPublicAccessBlock for the account") from None
    try:
        bucket_level: dict[str, bool] | None = _block(clients.client("s3").get_public_access_block(Bucket=bucket))
    except ClientError as exc:
        if error_code(exc) not in _NO_BLOCK:
            raise aws_error(exc, f"GetPublicAccessBlock for bucket {bucket}") from None
        bucket_level = None
    except BotoCoreError as exc:
        raise aws_error(exc, f"GetPublicAccessBlock for bucket {bucket}") from None
    return PublicAccess(bucket, account, bucket_level, account_checked)


# -- cluster status ----------------------------------------------------------------------------

class Readiness(StrEnum):
    READY = "ready"                # available: work can start
    CHANGING = "changing"          # a change under way that ends on its own: wait for it, with a limit
    PAUSED = "paused"              # an operator (or a schedule) paused it: resume it, then re-run
    GOING_AWAY = "going-away"      # being deleted: nothing to migrate
    NEEDS_OPERATOR = "needs-operator"  # failed or incompatible: AWS or an operator must fix it first
    MISSING = "missing"


#: ClusterStatus values as the Redshift API reference lists them (Cluster.ClusterStatus), plus
#: the pausing/resuming transitions a pause or resume shows.
_CHANGING = frozenset({"creating", "modifying", "resizing", "rebooting", "renaming", "cancelling-resize",
                       "rotating-keys", "updating-hsm", "available, prep-for-resize", "available, resize-cleanup",
                       "pausing", "resuming"})
_GOING_AWAY = frozenset({"deleting", "final-snapshot"})
_NEEDS_OPERATOR = frozenset({"hardware-failure", "incompatible-hsm", "incompatible-network",
                             "incompatible-parameters", "incompatible-restore", "storage-full"})


@dataclass(frozen=True)
class ClusterCondition:
    cluster_id: str
    readiness: Readiness
    status: str | None
    problem: str | None = None


def cluster_condition(cluster: dict[str, Any] | None, cluster_id: str, region: str) -> ClusterCondition:
    """What DescribeClusters' status means for starting work on ``cluster_id``."""
    if cluster is None:
        return ClusterCondition(cluster_id, Readiness.MISSING, None, f"cluster {cluster_id} does not exist in {region}")
    status = str(cluster.get("ClusterStatus") or "")
    if status == "available":
        return ClusterCondition(cluster_id, Readiness.READY, status)
    if status == "paused":
        return ClusterCondition(cluster_id, Readiness.PAUSED, status,
                                f"cluster {cluster_id} is paused: resume it (`aws redshift resume-cluster --region "
                                f"{region} --cluster-identifier {cluster_id}`), wait until it is available, then "
                                "re-run; check that no pause schedule will pause it during the migration")
    if status in _CHANGING:
        return ClusterCondition(cluster_id, Readiness.CHANGING, status,
                                f"cluster {cluster_id} is {status}: wait until it is available, then re-run")
    if status in _GOING_AWAY:
        return ClusterCondition(cluster_id, Readiness.GOING_AWAY, status,
                                f"cluster {cluster_id} is being deleted ({status}); nothing can be migrated from it")
    if status in _NEEDS_OPERATOR:
        return ClusterCondition(cluster_id, Readiness.NEEDS_OPERATOR, status,
                                f"cluster {cluster_id} is {status}: fix it (see the Redshift console's events) "
                                "until it is available, then re-run")
    return ClusterCondition(cluster_id, Readiness.NEEDS_OPERATOR, status,
                            f"cluster {cluster_id} has status {status!r}, which migrator does not know; wait until it "
                            "is available, then re-run")


def check_cluster(clients: AwsClients, cluster_id: str) -> ClusterCondition:
    return cluster_condition(describe_cluster(clients, cluster_id), cluster_id, clients.region)


# -- a Serverless workgroup named as a cluster ----------------------------------------------

@dataclass(frozen=True)
class NameCheck:
    cluster: dict[str, Any] | None
    workgroup: dict[str, Any] | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


def provisioned_cluster_named(clients: AwsClients, name: str) -> NameCheck:
    """The provisioned cluster ``name``; when there is none, whether ``name`` is a Redshift
    Serverless workgroup (which migrator cannot migrate: Serverless is always encrypted)."""
    cluster = describe_cluster(clients, name)
    if cluster is not None:
        return NameCheck(cluster)
    missing = f"cluster {name} does not exist in {clients.region}"
    try:
        workgroup = clients.client("redshift-serverless").get_workgroup(workgroupName=name)["workgroup"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return NameCheck(None, problem=missing)
        return NameCheck(None, problem=missing, notes=[f"whether {name} is a Serverless workgroup could not be "
                                                       f"checked: {describe(exc)}"])
    except BotoCoreError as exc:
        return NameCheck(None, problem=missing, notes=[f"whether {name} is a Serverless workgroup could not be "
                                                       f"checked: {describe(exc)}"])
    return NameCheck(None, workgroup,
                     problem=f"{name} is a Redshift Serverless workgroup (namespace "
                             f"{workgroup.get('namespaceName', '?')}), not a provisioned cluster: migrator migrates "
                             "provisioned clusters; a Serverless namespace is always encrypted (change its KMS key "
                             "in the namespace settings)")


# -- cross-region snapshot copy ----------------------------------------------------------------

def snapshot_copy_problem(clients: AwsClients, cluster_id: str, *, handled: bool) -> tuple[SnapshotCopy | None,
                                                                                               str | None]:
    """Cross-region snapshot copy on ``cluster_id``, and the problem it is when the tool may not
    disable and restore it (``handled`` = target.handle_snapshot_copy). Encryption changes and
    renames of a KMS cluster are refused while it is on."""
    cluster = describe_cluster(clients, cluster_id)
    copy = snapshot_copy_of(cluster) if cluster is not None else None
    if copy is None or handled:
        return copy, None
    return copy, snapshot_copy_steps(cluster_id, copy, clients.region)


# -- target credentials ------------------------------------------------------------------------

def target_credentials_problem(clients: AwsClients, section: ConnectionSection, *, needs_master_password: bool,
                               where: str = "target") -> str | None:
    """IAM-auth credentials (GetClusterCredentials) exist only for a cluster that exists, so
    preflight must not ask for them before the target is created or restored; and a cluster the
    tool creates with CreateCluster (unload-copy) needs a master password from password_env or
    secret_arn. None when nothing is wrong (for a restore, credentials are asked for once the
    restored cluster exists)."""
    if not section.iam_auth or not section.cluster_id:
        return None
    exists = describe_cluster(clients, section.cluster_id) is not None
    if needs_master_password and not exists:
        return (f"{where}.iam_auth: cluster {section.cluster_id or '(unnamed)'} does not exist yet, so "
                "GetClusterCredentials cannot issue credentials for it, and creating it needs a master password: "
                f"set {where}.password_env or {where}.secret_arn instead")
    return None
