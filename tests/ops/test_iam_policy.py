"""The generated IAM policies grant what the product calls, scoped to what the config names."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from migrator.config import parse_config
from migrator.errors import ConfigError
from migrator.iam_policy import cluster_role_policy, operator_policy

PACKAGE = Path(__file__).resolve().parents[2] / "migrator"
ACCOUNT = "123456789012"


def settings(strategy: str, **target: Any) -> Any:
    data: dict[str, Any] = {
        "migration": {"name": "m", "strategy": strategy, "region": "eu-west-1"},
        "source": {"cluster_id": "analytics", "password_env": "SRC_PW"},
        "target": {"cluster_id": "analytics-enc", "kms_key_id": "alias/prod", **target},
    }
    if strategy == "modify":
        data["target"].pop("cluster_id")
    if strategy == "unload-copy":
        data["staging"] = {"s3_uri": "s3://stage-bucket/migrator/", "kms_key_id": "alias/staging",
                           "iam_role_arn": f"arn:aws:iam::{ACCOUNT}:role/RedshiftCopy"}
    return parse_config(data, Path("m.toml")).settings


def product_calls(service: str) -> set[str]:
    """Every `client("<service>").<operation>` the product (not its sandbox) makes, as IAM action names."""
    model = botocore.session.get_session().get_service_model(service)
    by_method = {re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower(): op for op in model.operation_names}
    found: set[str] = set()
    # Any `.operation` the product calls or hands on (`fn = redshift.describe_x`) whose name is one of
    # the service's operations, and any paginator it asks for by name.
    pattern = re.compile(r"\.\s*([a-z_0-9]+)\b|get_paginator\(\"([a-z_0-9]+)\"\)", re.S)
    for path in PACKAGE.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for groups in pattern.findall(path.read_text()):
            method = groups[0] or groups[1]
            if method in by_method:
                found.add(f"{service}:{by_method[method]}")
    return found


def allowed(policy: dict[str, Any], action: str, resource: str | None = None) -> bool:
    for statement in policy["Statement"]:
        if action in statement["Action"] and (resource is None or any(
                fnmatch.fnmatchcase(resource, pattern) for pattern in statement["Resource"])):
            return True
    return False


@pytest.mark.parametrize("strategy", ["unload-copy", "modify", "snapshot-restore"])
def test_operator_policy_is_valid_and_scoped(strategy: str) -> None:
    policy = operator_policy(settings(strategy))
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)), "statement ids must be unique"
    for statement in policy["Statement"]:
        destructive = {"redshift:DeleteCluster", "redshift:ModifyCluster", "redshift:RebootCluster"}
        if destructive & set(statement["Action"]):
            assert "*" not in statement["Resource"], statement
            assert all(":cluster:analytics" in r or ":snapshot:analytics" in r for r in statement["Resource"])


def test_operator_policy_covers_every_redshift_call_the_product_makes() -> None:
    calls = product_calls("redshift")
    assert "redshift:ModifyCluster" in calls and "redshift:CreateCluster" in calls  # the scan finds calls
    policy = operator_policy(settings("unload-copy", iam_auth=True, password_env=None, handle_snapshot_copy=True))
    missing = sorted(c for c in calls if not allowed(policy, c))
    assert missing == []


def test_deletion_only_reaches_the_migrations_clusters() -> None:
    policy = operator_policy(settings("unload-copy"))
    arn = f"arn:aws:redshift:eu-west-1:{ACCOUNT}:cluster:"
    assert allowed(policy, "redshift:DeleteCluster", arn + "analytics-enc")
    assert allowed(policy, "redshift:DeleteCluster", arn + "analytics-unencrypted-20261201")
    assert not allowed(policy, "redshift:DeleteCluster", arn + "billing")
    assert not allowed(policy, "redshift:DeleteCluster", arn.replace(ACCOUNT, "999999999999") + "analytics")


def test_modify_never_creates_or_deletes_clusters() -> None:
    policy = operator_policy(settings("modify"))
    assert not allowed(policy, "redshift:DeleteCluster")
    assert not allowed(policy, "redshift:CreateCluster")
    assert allowed(policy, "redshift:ModifyCluster", "arn:aws:redshift:eu-west-1:*:cluster:analytics")


def test_cluster_role_reaches_only_the_staging_prefix_and_key() -> None:
    policy = cluster_role_policy(settings("unload-copy"))
    assert allowed(policy, "s3:PutObject", "arn:aws:s3:::stage-bucket/migrator/public/t/0000_part_00")
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::stage-bucket/other/x")
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::another-bucket/migrator/x")
    kms = [s for s in policy["Statement"] if "kms:GenerateDataKey" in s["Action"]]
    assert kms and kms[0]["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == ["alias/staging"]


def test_cluster_role_for_a_route_without_staging_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no cluster role"):
        cluster_role_policy(settings("modify"))


# -- what a first run on a real account needs (issue 20) ------------------------------------------

def full_settings(strategy: str = "unload-copy", *, notify: bool = False, **target: Any) -> Any:
    data: dict[str, Any] = {
        "migration": {"name": "m", "strategy": strategy, "region": "eu-west-1"},
        "source": {"cluster_id": "analytics", "iam_auth": True, "user": "etl"},
        "target": {"cluster_id": "analytics-enc", "kms_key_id": "alias/prod", "iam_auth": True,
                   "user": "admin", **target},
        "staging": {"s3_uri": "s3://stage-bucket/migrator/", "kms_key_id": "alias/staging",
                    "iam_role_arn": f"arn:aws:iam::{ACCOUNT}:role/RedshiftCopy"},
    }
    if strategy != "unload-copy":
        data.pop("staging")
    if notify:
        data["notify"] = {"sns_topic_arn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:migrations"}
    return parse_config(data, Path("m.toml")).settings


def statements_with(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in s["Action"]]


def test_operator_may_locate_the_staging_bucket() -> None:
    policy = operator_policy(full_settings())
    assert allowed(policy, "s3:GetBucketLocation", "arn:aws:s3:::stage-bucket")
    assert not allowed(policy, "s3:GetBucketLocation", "arn:aws:s3:::another-bucket")
    assert "s3:GetBucketLocation" in product_calls("s3")


def test_operator_may_decrypt_with_the_staging_key_only() -> None:
    policy = operator_policy(full_settings())
    decrypt = statements_with(policy, "kms:Decrypt")
    aliases = {a for s in decrypt for a in s.get("Condition", {}).get("ForAnyValue:StringEquals", {})
               .get("kms:ResourceAliases", [])}
    assert "alias/staging" in aliases


@pytest.mark.parametrize("strategy", ["unload-copy", "modify", "snapshot-restore"])
def test_the_target_key_allows_what_the_cluster_does_with_it(strategy: str) -> None:
    policy = operator_policy(full_settings(strategy, kms_key_id=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1"))
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1"
    for action in ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"):
        assert allowed(policy, action, key), action
    unconditional = {"Statement": [s for s in policy["Statement"] if "Condition" not in s]}
    assert not allowed(unconditional, "kms:Decrypt", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/other")


def test_pass_role_covers_every_role_the_new_cluster_receives() -> None:
    roles = [f"arn:aws:iam::{ACCOUNT}:role/SourceRole", f"arn:aws:iam::{ACCOUNT}:role/DefaultRole"]
    policy = operator_policy(full_settings(), passed_roles=roles)
    for role in roles + [f"arn:aws:iam::{ACCOUNT}:role/RedshiftCopy"]:
        assert allowed(policy, "iam:PassRole", role), role
    assert not allowed(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")
    for statement in statements_with(policy, "iam:PassRole"):
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "redshift.amazonaws.com"}}
    # Without the source's roles read, any role may be passed, to Redshift only.
    unread = operator_policy(full_settings("snapshot-restore"))
    assert allowed(unread, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/SourceRole") or \
        allowed(unread, "iam:PassRole", "arn:aws:iam::*:role/SourceRole")


@pytest.mark.parametrize("strategy", ["unload-copy", "modify"])
def test_snapshot_copy_grant_may_be_made_in_the_destination_region(strategy: str) -> None:
    assert not allowed(operator_policy(full_settings(strategy)), "redshift:CreateSnapshotCopyGrant")
    policy = operator_policy(full_settings(strategy, handle_snapshot_copy=True))
    grant = f"arn:aws:redshift:us-west-2:{ACCOUNT}:snapshotcopygrant:migrator-analytics"
    assert allowed(policy, "redshift:CreateSnapshotCopyGrant", grant.replace(ACCOUNT, "*")) or \
        allowed(policy, "redshift:CreateSnapshotCopyGrant", grant)
    kms = statements_with(policy, "kms:CreateGrant")
    assert any(s["Resource"][0].startswith("arn:aws:kms:*:") and s["Resource"][0].endswith(":key/*") and s["Condition"]["ForAnyValue:StringEquals"]
               ["kms:ResourceAliases"] == ["alias/aws/redshift"] for s in kms)


def test_hsm_target_may_describe_its_certificate_and_configuration() -> None:
    policy = operator_policy(full_settings(kms_key_id=None, encryption="hsm", hsm_client_certificate="c",
                                           hsm_configuration="h"))
    assert allowed(policy, "redshift:DescribeHsmClientCertificates")
    assert allowed(policy, "redshift:DescribeHsmConfigurations")
    assert "redshift:DescribeHsmConfigurations" in product_calls("redshift")


def test_notify_may_publish_to_its_topic_only() -> None:
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:migrations"
    assert allowed(operator_policy(full_settings(notify=True)), "sns:Publish", topic)
    assert not allowed(operator_policy(full_settings()), "sns:Publish")


def test_temporary_credentials_reach_every_name_each_cluster_goes_by() -> None:
    from migrator.strategies.cutover import old_name_for

    policy = operator_policy(full_settings())
    arn = f"arn:aws:redshift:eu-west-1:{ACCOUNT}:"
    renamed = old_name_for("analytics")
    for resource in ("dbuser:analytics/etl", f"dbuser:{renamed}/etl",  # the source, then renamed away
                     "dbuser:analytics-enc/admin", "dbuser:analytics/admin",  # the new one, then under the old name
                     "dbname:analytics/dev", f"dbname:{renamed}/dev", "dbname:analytics-enc/dev"):
        assert allowed(policy, "redshift:GetClusterCredentials", arn + resource), resource
    restored = operator_policy(full_settings("snapshot-restore"))
    assert allowed(restored, "redshift:GetClusterCredentials", arn + "dbuser:analytics-enc/admin")
    assert allowed(restored, "redshift:GetClusterCredentials", arn + "dbuser:analytics/admin")


@pytest.mark.parametrize("source_id", ["a" * 63, "b" * 41 + "-x" * 5 + "yz", "c" * 41 + "-d" * 10, "short"])
def test_renamed_away_name_matches_the_policys_pattern(source_id: str) -> None:
    from datetime import datetime

    from migrator.strategies.cutover import old_name_for

    name = old_name_for(source_id, datetime(2026, 12, 1))
    assert len(name) <= 63 and "--" not in name and name.endswith("-unencrypted-20261201")
    data = {"migration": {"name": "m", "strategy": "snapshot-restore", "region": "eu-west-1"},
            "source": {"cluster_id": source_id, "password_env": "P"},
            "target": {"cluster_id": "new-one", "kms_key_id": "alias/prod"}}
    policy = operator_policy(parse_config(data, Path("m.toml")).settings)
    assert allowed(policy, "redshift:DeleteCluster", f"arn:aws:redshift:eu-west-1:*:cluster:{name}")
    assert allowed(policy, "redshift:ModifyCluster", f"arn:aws:redshift:eu-west-1:*:cluster:{name}")


@pytest.mark.parametrize("strategy", ["unload-copy", "modify", "snapshot-restore"])
@pytest.mark.parametrize("roles", [None, [], [f"arn:aws:iam::{ACCOUNT}:role/SourceRole"]])
def test_every_statement_names_resources(strategy: str, roles: list[str] | None) -> None:
    """IAM refuses a statement without resources (MalformedPolicyDocument): a source with no roles
    gets no PassRole statement rather than an empty one."""
    policy = operator_policy(full_settings(strategy, handle_snapshot_copy=True), passed_roles=roles)
    assert all(statement["Resource"] for statement in policy["Statement"])
    if strategy == "snapshot-restore" and roles == []:
        assert not allowed(policy, "iam:PassRole")
