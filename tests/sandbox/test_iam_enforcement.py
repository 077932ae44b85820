"""The sandbox enforces IAM: the ready-made configs' keys may do what `iam-policy --for operator`
allows and nothing else; UNLOAD/COPY act with `--for cluster-role`'s permissions; a refusal reads
as AWS's (AccessDenied, "... because no identity-based policy allows ...")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import redshift_connector
from botocore.exceptions import ClientError

from migrator.config import load_config
from migrator.iam_policy import operator_policy
from migrator.sandbox.client import SandboxClient
from migrator.sandbox.controlplane.iam import Check, allows


def limited(sandbox: SandboxClient, service: str, region: str | None = None) -> Any:
    """A client with the keys `sandbox env` exports (the ready-made configs' operator)."""
    return boto3.session.Session().client(
        service, region_name=region or sandbox.info.region, endpoint_url=sandbox.info.endpoint_url,
        aws_access_key_id=sandbox.info.access_key, aws_secret_access_key=sandbox.info.secret_key)


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return {"code": caught.value.response["Error"]["Code"], "message": caught.value.response["Error"]["Message"],
            "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def test_sandbox_json_keeps_limited_and_administrator_keys_apart(sandbox: SandboxClient) -> None:
    info = json.loads((sandbox.directory / "sandbox.json").read_text())
    assert info["access_key"] and info["admin_access_key"] and info["access_key"] != info["admin_access_key"]
    assert sandbox.env()["AWS_ACCESS_KEY_ID"] == info["access_key"]
    user = sandbox.client("iam").list_users()["Users"]
    assert "migrator-operator" in {u["UserName"] for u in user}


def test_a_call_outside_the_operator_policy_is_refused_as_aws_refuses_it(sandbox: SandboxClient) -> None:
    redshift = limited(sandbox, "redshift")
    # Inside the policy: describing, and changing the ready-made configs' source.
    assert redshift.describe_clusters(ClusterIdentifier=sandbox.info.source_cluster_id)["Clusters"]
    sandbox.client("redshift").create_cluster(
        ClusterIdentifier="billing", NodeType="ra3.xlplus", NumberOfNodes=2, MasterUsername="awsuser",
        MasterUserPassword="Passw0rd-billing", Encrypted=True)
    refused = refusal(lambda: redshift.delete_cluster(ClusterIdentifier="billing", SkipFinalClusterSnapshot=True))
    assert refused["code"] == "AccessDenied" and refused["status"] == 403
    assert refused["message"] == (
        "User: arn:aws:iam::123456789012:user/migrator-operator is not authorized to perform: "
        "redshift:DeleteCluster on resource: arn:aws:redshift:us-east-1:123456789012:cluster:billing "
        "because no identity-based policy allows the redshift:DeleteCluster action")
    assert sandbox.client("redshift").describe_clusters(ClusterIdentifier="billing")["Clusters"]  # untouched
    # S3 and KMS answer in their own formats.
    # (Outside the staging prefix: under it the operator writes the file groups' manifests.)
    s3 = refusal(lambda: limited(sandbox, "s3").put_object(Bucket=sandbox.info.bucket, Key="elsewhere/x", Body=b"x"))
    assert s3["code"] == "AccessDenied" and s3["status"] == 403 and "s3:PutObject" in s3["message"]
    kms = refusal(lambda: limited(sandbox, "kms").encrypt(KeyId=sandbox.info.disabled_kms_key_id, Plaintext=b"x"))
    assert kms["code"] == "AccessDeniedException" and "kms:Encrypt" in kms["message"]


def test_creating_a_cluster_passes_only_the_roles_the_policy_names(sandbox: SandboxClient, tmp_path: Path) -> None:
    iam = sandbox.client("iam")
    other = iam.create_role(RoleName="SomethingElse", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    redshift = limited(sandbox, "redshift")
    refused = refusal(lambda: redshift.create_cluster(
        ClusterIdentifier=f"{sandbox.info.source_cluster_id}-encrypted", NodeType="ra3.xlplus", NumberOfNodes=2,
        MasterUsername="awsuser", MasterUserPassword="Passw0rd-x1", Encrypted=True, KmsKeyId=sandbox.info.kms_alias,
        IamRoles=[sandbox.info.iam_role_arn, other]))
    assert refused["code"] == "AccessDenied" and f"iam:PassRole on resource: {other}" in refused["message"]
    assert f"{sandbox.info.source_cluster_id}-encrypted" not in sandbox.cluster_ids()


def test_unknown_keys_are_not_of_this_account(sandbox: SandboxClient) -> None:
    client = boto3.session.Session().client("redshift", region_name=sandbox.info.region,
                                            endpoint_url=sandbox.info.endpoint_url,
                                            aws_access_key_id="AKIANOTAREALKEY00000", aws_secret_access_key="x")
    refused = refusal(lambda: client.describe_clusters())
    assert refused["code"] == "InvalidClientTokenId" and refused["status"] == 403


def test_the_ready_made_keys_hold_exactly_the_ready_made_configs_policies(sandbox: SandboxClient) -> None:
    iam = sandbox.client("iam")
    attached = iam.list_attached_user_policies(UserName="migrator-operator")["AttachedPolicies"]
    documents = []
    for policy in attached:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)
                         ["PolicyVersion"]["Document"])
    assert iam.list_user_policies(UserName="migrator-operator")["PolicyNames"] == []
    expected = [operator_policy(load_config(sandbox.directory / f"{name}.toml").settings,
                                passed_roles=[sandbox.info.iam_role_arn])
                for name in ("unload-copy", "modify", "snapshot-restore")]
    as_text = sorted(json.dumps(d if isinstance(d, dict) else json.loads(d), sort_keys=True) for d in documents)
    assert as_text == sorted(json.dumps(d, sort_keys=True) for d in expected)


def test_unload_acts_with_the_cluster_roles_permissions(sandbox: SandboxClient) -> None:
    """UNLOAD to a bucket the role's policy does not name is refused the way Redshift reports S3's 403."""
    sandbox.client("s3").create_bucket(Bucket="not-the-staging-bucket")
    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=info.user,
                                      password=info.password, ssl=False, timeout=60)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        table = cur.execute("select schemaname, tablename from pg_tables where schemaname not in "
                            "('pg_catalog', 'information_schema') limit 1").fetchone()
        query = f"select * from \"{table[0]}\".\"{table[1]}\""
        with pytest.raises(redshift_connector.ProgrammingError, match="Access Denied|AccessDenied"):
            cur.execute(f"unload ('{query.replace(chr(39), chr(39) * 2)}') to 's3://not-the-staging-bucket/x/' "
                        f"iam_role '{sandbox.info.iam_role_arn}'")
        cur.execute(f"unload ('{query.replace(chr(39), chr(39) * 2)}') to "
                    f"'s3://{sandbox.info.bucket}/enforcement-check/' iam_role '{sandbox.info.iam_role_arn}' "
                    f"kms_key_id '{sandbox.info.kms_key_id}' encrypted allowoverwrite")
    finally:
        conn.close()
    listed = sandbox.client("s3").list_objects_v2(Bucket=sandbox.info.bucket, Prefix="enforcement-check/")
    assert listed.get("KeyCount", 0) > 0


def test_policy_evaluation_follows_the_iam_rules() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
         "Condition": {"StringLike": {"s3:prefix": ["p/*"]}}},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "arn:aws:kms:*:1:key/*",
         "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/s"]}}},
        {"Effect": "Allow", "Action": "redshift:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "redshift:DeleteCluster", "Resource": "arn:aws:redshift:*:*:cluster:prod"},
    ]}
    assert allows([policy], Check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": ("p/x",)}))
    assert not allows([policy], Check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": ("q/",)}))
    assert not allows([policy], Check("s3:ListBucket", "arn:aws:s3:::b"))  # a missing key does not match
    assert allows([policy], Check("kms:Decrypt", "arn:aws:kms:eu-west-1:1:key/k", {"kms:ResourceAliases": ("alias/s",)}))
    assert not allows([policy], Check("kms:Decrypt", "arn:aws:kms:eu-west-1:1:key/k", {"kms:ResourceAliases": ()}))
    assert allows([policy], Check("redshift:DeleteCluster", "arn:aws:redshift:r:1:cluster:dev"))
    assert not allows([policy], Check("redshift:DeleteCluster", "arn:aws:redshift:r:1:cluster:prod"))  # Deny wins
    assert not allows([policy], Check("s3:GetObject", "arn:aws:s3:::b/p/x"))  # implicit deny
