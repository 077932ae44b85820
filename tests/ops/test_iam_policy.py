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
    # Any `.operation(` the product calls whose name is one of the service's operations.
    pattern = re.compile(r"\.\s*([a-z_0-9]+)\(", re.S)
    for path in PACKAGE.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        for method in pattern.findall(path.read_text()):
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
    policy = operator_policy(settings("unload-copy", iam_auth=True, password_env=None))
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
