"""Passwords come from the environment, Secrets Manager or IAM, and never show in reprs."""

from __future__ import annotations

import json

import boto3
import pytest

from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection
from migrator.credentials import resolve
from migrator.errors import ConfigError, RemoteError
from migrator.sandbox.client import SandboxClient


@pytest.fixture
def aws(sandbox: SandboxClient) -> AwsClients:
    session = boto3.Session(aws_access_key_id=sandbox.info.access_key, aws_secret_access_key=sandbox.info.secret_key)
    return AwsClients(sandbox.info.region, endpoint_url=sandbox.info.endpoint_url, session=session)


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
    arn = sm.create_secret(Name="creds-json", SecretString=json.dumps({"username": "etl", "password": "s3cr3t"}))["ARN"]
    creds = resolve(ConnectionSection(cluster_id="a", secret_arn=arn), "source", aws)
    assert (creds.user, creds.password) == ("etl", "s3cr3t")
    plain = sm.create_secret(Name="creds-plain", SecretString="justpw")["ARN"]
    assert resolve(ConnectionSection(cluster_id="a", secret_arn=plain), "source", aws).password == "justpw"
    with pytest.raises(RemoteError, match="cannot read secret") as info:
        resolve(ConnectionSection(cluster_id="a", secret_arn=arn + "x"), "target", aws)
    assert "s3cr3t" not in info.value.one_line()


def test_iam_auth(aws: AwsClients, sandbox: SandboxClient) -> None:
    creds = resolve(ConnectionSection(cluster_id=sandbox.info.source_cluster_id, user="etl", iam_auth=True),
                    "source", aws)
    assert creds.user.endswith("etl") and creds.password
    with pytest.raises(RemoteError, match="GetClusterCredentials for missing failed"):
        resolve(ConnectionSection(cluster_id="missing", iam_auth=True), "source", aws)
