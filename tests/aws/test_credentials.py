"""Passwords come from the environment, Secrets Manager or IAM, and never show in reprs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection
from migrator.credentials import resolve
from migrator.errors import ConfigError, RemoteError


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield AwsClients("us-east-1", session=boto3.Session())


def test_env_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_PW", "hunter2")
    creds = resolve(ConnectionSection(cluster_id="a", password_env="SRC_PW"), "source")
    assert creds.password == "hunter2"
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)


def test_missing_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(ConfigError, match="source.password_env: environment variable NOPE_PW is not set"):
        resolve(ConnectionSection(cluster_id="a", password_env="NOPE_PW"), "source")


def test_secrets_manager_json_and_plain(aws: AwsClients) -> None:
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"username": "etl", "password": "s3cr3t"}))["ARN"]
    creds = resolve(ConnectionSection(cluster_id="a", secret_arn=arn), "source", aws)
    assert (creds.user, creds.password) == ("etl", "s3cr3t")
    plain = sm.create_secret(Name="plain", SecretString="justpw")["ARN"]
    assert resolve(ConnectionSection(cluster_id="a", secret_arn=plain), "source", aws).password == "justpw"
    with pytest.raises(RemoteError, match="cannot read secret") as info:
        resolve(ConnectionSection(cluster_id="a", secret_arn=arn + "x"), "target", aws)
    assert "s3cr3t" not in info.value.one_line()


def test_iam_auth(aws: AwsClients) -> None:
    aws.client("redshift").create_cluster(ClusterIdentifier="a", NodeType="ra3.xlplus", MasterUsername="admin",
                                          MasterUserPassword="Passw0rd!", ClusterType="single-node")
    creds = resolve(ConnectionSection(cluster_id="a", user="etl", iam_auth=True), "source", aws)
    assert creds.user.endswith("etl") and creds.password
    with pytest.raises(RemoteError, match="GetClusterCredentials for missing failed"):
        resolve(ConnectionSection(cluster_id="missing", iam_auth=True), "source", aws)
