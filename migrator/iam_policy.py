"""Least-privilege IAM policies for a migration, derived from its config.

Two principals need permissions: the operator (whoever runs `migrator`) and the
role the clusters assume for UNLOAD/COPY. Each statement is scoped to the clusters,
the staging prefix and the keys the config names; the few calls IAM cannot scope to
a resource (CloudWatch reads, DescribeKey by alias) say so in their `Sid`.

The policies are built offline from the config alone: the account comes from the
staging role's ARN when there is one, otherwise it is left as a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from migrator.config import Settings
from migrator.names import renamed_away_prefix

Principal = Literal["operator", "cluster-role"]
PRINCIPALS: tuple[Principal, ...] = ("operator", "cluster-role")

_ROLE_ACCOUNT = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/")
#: What the cluster needs of its KMS key (Redshift creates a grant and wraps its cluster key: the
#: AWS KMS Developer Guide, "How Amazon Redshift uses AWS KMS"); the operator's call that sets the
#: key (CreateCluster, RestoreFromClusterSnapshot, ModifyCluster) is checked against the same.
_CLUSTER_KEY_ACTIONS = ["kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"]


@dataclass(frozen=True)
class Scope:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"


def scope_of(settings: Settings) -> Scope:
    partition, account = "aws", "*"
    role = settings.staging.iam_role_arn if settings.staging else None
    if role and (match := _ROLE_ACCOUNT.match(role)):
        partition, account = match.group(1), match.group(2)
    return Scope(partition, settings.migration.region, account)


def _statement(sid: str, actions: list[str], resources: list[str],
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)),
                            "Resource": sorted(set(resources))}
    if condition:
        body["Condition"] = condition
    return body


def _key_resources(scope: Scope, key_ids: list[str]) -> tuple[list[str], list[str]]:
    """Key ARNs that can be named directly, and aliases that can only be matched by condition."""
    arns, aliases = [], []
    for key in key_ids:
        if key.startswith("arn:"):
            arns.append(key)
        elif key.startswith("alias/"):
            aliases.append(scope.arn("kms", key))
        else:
            arns.append(scope.arn("kms", f"key/{key}"))
    return arns, aliases


def _kms_statements(scope: Scope, sid: str, actions: list[str], key_ids: list[str]) -> list[dict[str, Any]]:
    arns, aliases = _key_resources(scope, key_ids)
    statements = []
    if arns:
        statements.append(_statement(sid, actions, arns))
    if aliases:
        # A key named by alias is authorised through the alias the request used.
        statements.append(_statement(f"{sid}ByAlias", actions, [scope.arn("kms", "key/*")],
                                     {"ForAnyValue:StringEquals": {"kms:ResourceAliases": sorted(
                                         a.split(":", 5)[5] for a in aliases)}}))
    return statements


def renamed_pattern(source_id: str) -> str:
    """The renamed-away source's name as an IAM resource pattern (the date is the wildcard)."""
    return renamed_away_prefix(source_id) + "*"


def _bucket_and_prefix(s3_uri: str) -> tuple[str, str]:
    rest = s3_uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix


def operator_policy(settings: Settings, *, passed_roles: list[str] | None = None) -> dict[str, Any]:
    """The operator's policy. ``passed_roles``: the IAM roles the new cluster receives (the source's
    IamRoles and DefaultIamRoleArn, as `iam-policy --roles-from-source` reads them); without them
    any role in the account may be passed, to Redshift only."""
    scope = scope_of(settings)
    route = settings.route
    source, target = settings.source.cluster_id, settings.target.cluster_id
    renamed = renamed_pattern(source)
    clusters = [scope.arn("redshift", f"cluster:{source}")]
    if route.new_cluster:  # the new cluster, and the source under the name cutover renames it to
        clusters += [scope.arn("redshift", f"cluster:{target}"), scope.arn("redshift", f"cluster:{renamed}")]
    describes = [
        "redshift:DescribeClusters", "redshift:DescribeResize", "redshift:DescribeLoggingStatus",
        "redshift:DescribeTags", "redshift:DescribeEvents", "redshift:DescribeClusterSnapshots",
        "redshift:DescribeSnapshotCopyGrants", "redshift:DescribeClusterParameters",
        "redshift:DescribeClusterParameterGroups", "redshift:DescribeDataSharesForProducer",
        "redshift:DescribeUsageLimits", "redshift:DescribeScheduledActions",
        # an HSM target's preflight checks that both exist before CreateCluster
        "redshift:DescribeHsmClientCertificates", "redshift:DescribeHsmConfigurations"]
    statements = [
        _statement("DescribeClusters", describes, ["*"]),
        _statement("ReadMetricsForTheWriteFreeze",
                   ["cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData"], ["*"]),
        _statement("ChangeTheMigratedClusters", [
            "redshift:ModifyCluster", "redshift:RebootCluster", "redshift:DisableSnapshotCopy",
            "redshift:EnableSnapshotCopy", "redshift:CreateTags", "redshift:EnableLogging"], clusters),
        _statement("DescribeWorkgroupsToRefuseServerless", ["redshift-serverless:GetWorkgroup"], ["*"]),
    ]
    snapshots = [scope.arn("redshift", f"snapshot:{source}/*"),
                 scope.arn("redshift", f"snapshot:{renamed}/*")]
    if route.new_cluster:
        # Usage limits stay with the source through the rename: the same ones on the new cluster.
        statements.append(_statement("CopyUsageLimits", ["redshift:CreateUsageLimit"], [
            scope.arn("redshift", f"cluster:{target}"), scope.arn("redshift", "usagelimit:*")]))
        statements.append(_statement("CreateAndRetireClusters", [
            "redshift:CreateCluster", "redshift:DeleteCluster", "redshift:CreateClusterSnapshot",
            "redshift:RestoreFromClusterSnapshot"], clusters + snapshots))
        # The new cluster gets the source's roles (and default role): CreateCluster and
        # RestoreFromClusterSnapshot pass each of them, and the staging role.
        roles = sorted({*(passed_roles or []), *([settings.staging.iam_role_arn] if settings.staging else [])})
        if passed_roles is None:
            roles = [f"arn:{scope.partition}:iam::{scope.account}:role/*"]
        if roles:  # IAM refuses a statement without resources; no role passed, nothing to grant
            statements.append(_statement("PassRolesToTheNewCluster", ["iam:PassRole"], roles,
                                         {"StringEquals": {"iam:PassedToService": "redshift.amazonaws.com"}}))
    elif settings.staging is not None:
        statements.append(_statement("PassRolesToTheNewCluster", ["iam:PassRole"], [settings.staging.iam_role_arn],
                                     {"StringEquals": {"iam:PassedToService": "redshift.amazonaws.com"}}))
    if settings.target.handle_snapshot_copy:
        # The grant lives in the snapshot-copy destination region, which only the source's
        # ClusterSnapshotCopyStatus names (read at run time): any region of this account.
        statements.append(_statement("SnapshotCopyGrants", ["redshift:CreateSnapshotCopyGrant"], [
            scope.arn("redshift", "snapshotcopygrant:*").replace(f":{scope.region}:", ":*:", 1)]))
        # A grant made without a key uses the destination region's AWS managed key for Redshift,
        # on which CreateSnapshotCopyGrant creates a KMS grant as the caller.
        statements.append(_statement("CopyGrantOnTheDestinationsRedshiftKey", [
            "kms:CreateGrant", "kms:DescribeKey"],
            [f"arn:{scope.partition}:kms:*:{scope.account}:key/*"],
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/aws/redshift"]}}))
    if settings.source.iam_auth or settings.target.iam_auth:
        statements.append(_statement("TemporaryDatabaseCredentials", ["redshift:GetClusterCredentials"],
                                     _credential_resources(settings, scope)))
    secrets = [s for s in (settings.source.secret_arn, settings.target.secret_arn) if s]
    if secrets:
        statements.append(_statement("ReadDatabasePasswords", ["secretsmanager:GetSecretValue"], secrets))
    if settings.notify.sns_topic_arn:
        statements.append(_statement("NotifyTheTopic", ["sns:Publish"], [settings.notify.sns_topic_arn]))
    encryption_keys = [settings.target.kms_key_id] if settings.target.encryption == "kms" and \
        settings.target.kms_key_id else []
    statements += _kms_statements(scope, "UseTheTargetKey", _CLUSTER_KEY_ACTIONS, encryption_keys)
    if settings.target.encryption == "kms" and not settings.target.kms_key_id:
        statements += _kms_statements(scope, "UseTheDefaultRedshiftKey", _CLUSTER_KEY_ACTIONS,
                                      ["alias/aws/redshift"])
    if settings.staging is not None:
        bucket, prefix = _bucket_and_prefix(settings.staging.s3_uri)
        statements.append(_statement("ListTheStagingPrefix", ["s3:ListBucket"],
                                     [f"arn:{scope.partition}:s3:::{bucket}"],
                                     {"StringLike": {"s3:prefix": [f"{prefix}*"]}}))
        # The preflight asks where the bucket is (GetBucketLocation takes no prefix condition).
        statements.append(_statement("LocateTheStagingBucket", ["s3:GetBucketLocation"],
                                     [f"arn:{scope.partition}:s3:::{bucket}"]))
        statements.append(_statement("CheckAndCleanStagedFiles", ["s3:GetObject", "s3:DeleteObject"],
                                     [f"arn:{scope.partition}:s3:::{bucket}/{prefix}*"]))
        statements.append(_statement("CheckPublicAccessBlock", [
            "s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"],
            [f"arn:{scope.partition}:s3:::{bucket}", "*"]))
        # Reading an SSE-KMS object (the manifests the checks read) decrypts its data key.
        statements += _kms_statements(scope, "VerifyTheStagingKey", ["kms:DescribeKey", "kms:Decrypt"],
                                      [settings.staging.kms_key_id])
        if settings.tables.part_threshold() is not None:
            # A big table with no column to cut into ranges is loaded in groups of its UNLOAD's
            # files, each COPY from a manifest of its group the tool writes (SSE-KMS under the
            # staging key, which needs GenerateDataKey on it).
            statements.append(_statement("WriteFileGroupManifests", ["s3:PutObject"],
                                         [f"arn:{scope.partition}:s3:::{bucket}/{prefix}*"]))
            statements += _kms_statements(scope, "EncryptFileGroupManifests", ["kms:GenerateDataKey"],
                                          [settings.staging.kms_key_id])
    return {"Version": "2012-10-17", "Statement": statements}


def _credential_resources(settings: Settings, scope: Scope) -> list[str]:
    """GetClusterCredentials' dbuser/dbname ARNs for every cluster each side is reached under:
    the source before cutover and renamed away after it (the stray-write watch), the new cluster
    under its own name (restored or created) and, after cutover, under the source's name."""
    source, target = settings.source, settings.target
    clusters: dict[str, set[tuple[str, str]]] = {}
    if source.iam_auth:
        names = [source.cluster_id] + ([renamed_pattern(source.cluster_id)] if settings.route.new_cluster else [])
        for name in names:
            clusters.setdefault(name, set()).add((source.database, source.user))
    if target.iam_auth:
        names = [source.cluster_id] + ([target.cluster_id] if settings.route.new_cluster and target.cluster_id else [])
        for name in names:
            clusters.setdefault(name, set()).add((target.database, target.user))
    resources = []
    for name, pairs in clusters.items():
        for database, user in pairs:
            resources += [scope.arn("redshift", f"dbuser:{name}/{user}"), scope.arn("redshift", f"dbname:{name}/{database}")]
    return resources


def cluster_role_policy(settings: Settings) -> dict[str, Any]:
    if settings.staging is None:
        from migrator.errors import ConfigError

        raise ConfigError(f"strategy {settings.migration.strategy!r} stages nothing in S3: no cluster role is needed",
                          hint="use --for operator")
    scope = scope_of(settings)
    bucket, prefix = _bucket_and_prefix(settings.staging.s3_uri)
    statements = [
        _statement("ListTheStagingPrefix", ["s3:ListBucket", "s3:GetBucketLocation"],
                   [f"arn:{scope.partition}:s3:::{bucket}"]),
        _statement("UnloadAndCopyStagedFiles", ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                   [f"arn:{scope.partition}:s3:::{bucket}/{prefix}*"]),
    ]
    statements += _kms_statements(scope, "EncryptTheStagedFiles",
                                  ["kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"],
                                  [settings.staging.kms_key_id])
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy() -> dict[str, Any]:
    """The cluster role's trust policy: only Amazon Redshift may assume it."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def policy_for(settings: Settings, principal: Principal) -> dict[str, Any]:
    if principal == "operator":
        return operator_policy(settings)
    return cluster_role_policy(settings)
