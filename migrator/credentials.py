"""Database credentials, resolved at connect time and never stored or printed.

Sources, as the config names them: an environment variable (`password_env`), an
AWS Secrets Manager secret (`secret_arn`; a JSON secret's `password` field or the
plain string), or temporary IAM credentials (`iam_auth`, GetClusterCredentials).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection
from migrator.errors import ConfigError, RemoteError


@dataclass(frozen=True)
class DbCredentials:
    user: str
    password: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"{self.user} (password from {self.source})"


def resolve(conn: ConnectionSection, where: str, aws: AwsClients | None = None) -> DbCredentials:
    if conn.password_env:
        value = os.environ.get(conn.password_env)
        if not value:
            raise ConfigError(f"{where}.password_env: environment variable {conn.password_env} is not set",
                              hint=f"export {conn.password_env}=... before running")
        return DbCredentials(conn.user, value, f"${conn.password_env}")
    if conn.secret_arn:
        return _from_secret(conn, where, _need(aws, where))
    if conn.iam_auth:
        return _from_iam(conn, where, _need(aws, where))
    raise ConfigError(f"{where}: no credential source", hint="set password_env, secret_arn or iam_auth = true")


def _need(aws: AwsClients | None, where: str) -> AwsClients:
    if aws is None:
        raise ConfigError(f"{where}: this credential source needs AWS access")
    return aws


def _from_secret(conn: ConnectionSection, where: str, aws: AwsClients) -> DbCredentials:
    assert conn.secret_arn
    try:
        secret = aws.client("secretsmanager").get_secret_value(SecretId=conn.secret_arn)["SecretString"]
    except (ClientError, BotoCoreError) as exc:
        raise RemoteError(f"{where}.secret_arn: cannot read secret {conn.secret_arn}: {_code(exc)}") from None
    try:
        data = json.loads(secret)
    except json.JSONDecodeError:
        return DbCredentials(conn.user, secret, "secrets manager")
    if not isinstance(data, dict) or "password" not in data:
        raise ConfigError(f"{where}.secret_arn: secret {conn.secret_arn} has no 'password' field")
    return DbCredentials(str(data.get("username", conn.user)), str(data["password"]), "secrets manager")


def _from_iam(conn: ConnectionSection, where: str, aws: AwsClients) -> DbCredentials:
    try:
        answer = aws.client("redshift").get_cluster_credentials(
            DbUser=conn.user, DbName=conn.database, ClusterIdentifier=conn.cluster_id, AutoCreate=False,
            DurationSeconds=3600)
    except (ClientError, BotoCoreError) as exc:
        raise RemoteError(f"{where}.iam_auth: GetClusterCredentials for {conn.cluster_id} failed: "
                          f"{_code(exc)}") from None
    return DbCredentials(answer["DbUser"], answer["DbPassword"], "GetClusterCredentials")


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    return type(exc).__name__
