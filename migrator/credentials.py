"""Database credentials, resolved at connect time and never stored or printed.

Sources, as the config names them: an environment variable (`password_env`), an
AWS Secrets Manager secret (`secret_arn`; a JSON secret's `password` field or the
plain string), or temporary IAM credentials (`iam_auth`, GetClusterCredentials).

Resolved once per run, not once per connection: a secret is read again after SECRET_TTL
seconds at most (rotation), temporary IAM credentials shortly before they expire. Worker
threads opening connections at the same time share one AWS call. Only this process's memory
holds them; `forget()` drops them (after the database refused a password, say).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.clients import AwsClients
from migrator.aws.errors import aws_error
from migrator.config import ENV_NAME, ConnectionSection
from migrator.errors import ConfigError

#: How long a secret read from Secrets Manager is reused.
SECRET_TTL = 3600.0
#: GetClusterCredentials asks for this lifetime; the result is reused until REFRESH_MARGIN before it ends.
IAM_DURATION = 3600
REFRESH_MARGIN = 300.0

_LOCK = threading.Lock()
_CACHE: dict[tuple[Any, ...], tuple["DbCredentials", float]] = {}


@dataclass(frozen=True)
class DbCredentials:
    user: str
    password: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"{self.user} (password from {self.source})"


def resolve(conn: ConnectionSection, where: str, aws: AwsClients | None = None) -> DbCredentials:
    if conn.password_env:
        # The name passed the config's shape check; this keeps a hand-built section honest too
        # (a password written where its variable's name belongs is never echoed).
        if not ENV_NAME.match(conn.password_env):
            raise ConfigError(f"{where}.password_env: not an environment variable name (value not shown)",
                              hint="write the NAME of the variable that holds the password")
        value = os.environ.get(conn.password_env)
        if value is None:
            raise ConfigError(f"{where}.password_env: environment variable {conn.password_env} is not set",
                              hint=f"export {conn.password_env}=... before running")
        if not value:
            raise ConfigError(f"{where}.password_env: environment variable {conn.password_env} is set but empty",
                              hint=f"export {conn.password_env}=<the password> before running")
        return DbCredentials(conn.user, value, f"${conn.password_env}")
    if conn.secret_arn:
        clients = _need(aws, where)
        return _cached(("secret", conn.secret_arn, conn.user) + _aws_identity(clients),
                       lambda: _from_secret(conn, where, clients))
    if conn.iam_auth:
        clients = _need(aws, where)
        return _cached(("iam", conn.cluster_id, conn.database, conn.user) + _aws_identity(clients),
                       lambda: _from_iam(conn, where, clients))
    raise ConfigError(f"{where}: no credential source", hint="set password_env, secret_arn or iam_auth = true")


def forget() -> None:
    """Drop every cached credential: the next resolve() asks AWS again."""
    with _LOCK:
        _CACHE.clear()


def _aws_identity(aws: AwsClients) -> tuple[Any, ...]:
    return (aws.region, aws.endpoint_url, id(aws.session))


def _cached(key: tuple[Any, ...], fetch: Callable[[], tuple[DbCredentials, float]]) -> DbCredentials:
    # The lock is held while fetching, so threads connecting together make a single AWS call.
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and time.time() < hit[1] - REFRESH_MARGIN:
            return hit[0]
        creds, expires_at = fetch()
        _CACHE[key] = (creds, expires_at)
        return creds


def _need(aws: AwsClients | None, where: str) -> AwsClients:
    if aws is None:
        raise ConfigError(f"{where}: this credential source needs AWS access")
    return aws


def _from_secret(conn: ConnectionSection, where: str, aws: AwsClients) -> tuple[DbCredentials, float]:
    assert conn.secret_arn
    try:
        answer = aws.client("secretsmanager").get_secret_value(SecretId=conn.secret_arn)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"{where}.secret_arn: reading secret {conn.secret_arn}") from None
    expires_at = time.time() + SECRET_TTL + REFRESH_MARGIN
    secret = answer.get("SecretString")
    if secret is None:
        kind = "a binary secret (SecretBinary)" if "SecretBinary" in answer else "no SecretString"
        raise ConfigError(f"{where}.secret_arn: secret {conn.secret_arn} holds {kind}; migrator reads text only",
                          hint="store the password as a SecretString: plain text or JSON with a 'password' field")
    try:
        data = json.loads(secret)
    except json.JSONDecodeError:
        return DbCredentials(conn.user, secret, "secrets manager"), expires_at
    if not isinstance(data, dict):
        return DbCredentials(conn.user, secret, "secrets manager"), expires_at
    if "password" not in data:
        raise ConfigError(f"{where}.secret_arn: secret {conn.secret_arn} has no 'password' field")
    return DbCredentials(str(data.get("username", conn.user)), str(data["password"]), "secrets manager"), expires_at


def _from_iam(conn: ConnectionSection, where: str, aws: AwsClients) -> tuple[DbCredentials, float]:
    try:
        answer = aws.client("redshift").get_cluster_credentials(
            DbUser=conn.user, DbName=conn.database, ClusterIdentifier=conn.cluster_id, AutoCreate=False,
            DurationSeconds=IAM_DURATION)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"{where}.iam_auth: GetClusterCredentials for {conn.cluster_id}") from None
    expiration = answer.get("Expiration")
    expires_at = expiration.timestamp() if expiration is not None else time.time() + IAM_DURATION
    return DbCredentials(answer["DbUser"], answer["DbPassword"], "GetClusterCredentials"), expires_at
