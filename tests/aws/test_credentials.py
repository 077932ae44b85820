"""Passwords come from the environment, Secrets Manager or IAM, and never show in reprs."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from migrator import credentials

from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection
from migrator.credentials import resolve
from migrator.errors import ConfigError, RemoteError
from migrator.sandbox.client import SandboxClient


@pytest.fixture
def aws(sandbox: SandboxClient) -> AwsClients:
    # The account owner's keys: these tests make secrets and call GetClusterCredentials on clusters
    # of their own, outside any migration's policy.
    session = boto3.Session(aws_access_key_id=sandbox.info.admin_access_key,
                            aws_secret_access_key=sandbox.info.admin_secret_key)
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
    with pytest.raises(RemoteError, match="reading secret .* failed: ResourceNotFoundException") as info:
        resolve(ConnectionSection(cluster_id="a", secret_arn=arn + "x"), "target", aws)
    assert "s3cr3t" not in info.value.one_line()


def test_iam_auth(aws: AwsClients, sandbox: SandboxClient) -> None:
    creds = resolve(ConnectionSection(cluster_id=sandbox.info.source_cluster_id, user="etl", iam_auth=True),
                    "source", aws)
    assert creds.user.endswith("etl") and creds.password
    with pytest.raises(RemoteError, match="GetClusterCredentials for missing failed: ClusterNotFound"):
        resolve(ConnectionSection(cluster_id="missing", iam_auth=True), "source", aws)


# -- resolved once per run, not once per connection --------------------------------------------

def _count_calls(client: Any, operation: str) -> list[int]:
    seen: list[int] = []
    client.meta.events.register(f"before-call.*.{operation}", lambda **_: seen.append(1))
    return seen


def test_secret_read_once_for_many_connections_and_threads(aws: AwsClients) -> None:
    arn = aws.client("secretsmanager").create_secret(Name="creds-once", SecretString="pw-once")["ARN"]
    calls = _count_calls(aws.client("secretsmanager"), "GetSecretValue")
    section = ConnectionSection(cluster_id="a", secret_arn=arn)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: resolve(section, "source", aws).password, range(16)))
    assert found == ["pw-once"] * 16
    assert len(calls) == 1


def test_iam_credentials_cached_until_shortly_before_expiry(aws: AwsClients, sandbox: SandboxClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    section = ConnectionSection(cluster_id=sandbox.info.source_cluster_id, user="cached", iam_auth=True)
    calls = _count_calls(aws.client("redshift"), "GetClusterCredentials")
    first = resolve(section, "source", aws)
    assert resolve(section, "source", aws) == first and len(calls) == 1
    # Credentials that expire within the refresh margin are fetched again.
    monkeypatch.setattr(credentials, "REFRESH_MARGIN", credentials.IAM_DURATION + 60.0)
    resolve(section, "source", aws)
    assert len(calls) == 2


def test_binary_secret_is_one_config_line(aws: AwsClients) -> None:
    arn = aws.client("secretsmanager").create_secret(Name="creds-binary", SecretBinary=b"\x00pw")["ARN"]
    with pytest.raises(ConfigError) as info:
        resolve(ConnectionSection(cluster_id="a", secret_arn=arn), "target", aws)
    line = info.value.one_line()
    assert "target.secret_arn" in line and "SecretBinary" in line and "SecretString" in line
    assert info.value.exit_code == 2 and not info.value.retryable and "\n" not in line


def test_misspelt_profile_is_one_config_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile prod-migrator]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "prod-mirgator")
    with pytest.raises(ConfigError) as info:
        AwsClients("us-east-1").client("redshift")
    line = info.value.one_line()
    assert "prod-mirgator" in line and "AWS_PROFILE" in line and info.value.exit_code == 2


def test_parameter_validation_error_is_a_config_error(aws: AwsClients) -> None:
    from migrator.aws.clusters import call

    with pytest.raises(ConfigError, match="DurationSeconds") as info:
        call("GetClusterCredentials", lambda: aws.client("redshift").get_cluster_credentials(
            DbUser="u", ClusterIdentifier="c", DurationSeconds="an hour"))
    assert not info.value.retryable


def test_wrong_database_password_is_one_config_line(sandbox: SandboxClient) -> None:
    from migrator.credentials import DbCredentials
    from migrator.warehouse.connection import SANDBOX_PLAINTEXT, Endpoint, connect

    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    with pytest.raises(ConfigError) as raised:
        connect(Endpoint(info.host, info.port, info.database), DbCredentials(info.user, "not-the-password", "x"),
                tls=SANDBOX_PLAINTEXT)
    line = raised.value.one_line()
    assert "SQLSTATE 28P01" in line and "password" in line and "not-the-password" not in line
    assert raised.value.exit_code == 2 and not raised.value.retryable


def test_clients_shared_across_threads_and_instances(sandbox: SandboxClient) -> None:
    def make(_: int) -> Any:
        return AwsClients(sandbox.info.region, endpoint_url=sandbox.info.endpoint_url).client("s3")

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(make, range(32)))
    assert len({id(c) for c in made}) == 1
    assert AwsClients("us-east-1").session is AwsClients("eu-west-1").session


def test_a_rotated_secret_is_read_again_after_the_database_refuses_it(aws: AwsClients, sandbox: SandboxClient,
                                                                      tmp_path: Any) -> None:
    from migrator.warehouse.connection import Session, connect_section
    from tests.conftest import make_config

    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="creds-rotated", SecretString=json.dumps({"username": info.user,
                                                                         "password": "before-rotation"}))["ARN"]
    settings = make_config(tmp_path, "sqlite://",
                           migration={"aws_endpoint_url": sandbox.info.endpoint_url, "sandbox_plaintext": True},
                           source={"cluster_id": sandbox.info.source_cluster_id, "database": info.database,
                                   "password_env": None, "secret_arn": arn}).settings
    with pytest.raises(ConfigError, match="28P01"):  # the secret's value is wrong: one clear error, no loop
        connect_section(settings, settings.source, info.host, info.port, where="source", aws=aws)
    reads = _count_calls(sm, "GetSecretValue")
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": info.user, "password": info.password}))
    conn = connect_section(settings, settings.source, info.host, info.port, where="source", aws=aws, autocommit=True)
    with Session(conn) as s:
        assert s.run("select 1") == [(1,)]
    assert len(reads) == 1
    # From now on the fresh value is cached: no read per connection.
    connect_section(settings, settings.source, info.host, info.port, where="source", aws=aws).close()
    assert len(reads) == 1
