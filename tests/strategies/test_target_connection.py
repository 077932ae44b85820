"""How the tool reaches the new cluster before and after cutover (issue 20): a configured
target.host belongs to the new cluster's own name, and target.sslmode is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.config import parse_config
from migrator.strategies.sessions import target_connection


def settings(**target: Any) -> Any:
    return parse_config({
        "migration": {"name": "m", "strategy": "snapshot-restore", "region": "us-east-1"},
        "source": {"cluster_id": "prod", "password_env": "S", "host": "prod.example.com", "port": 5439},
        "target": {"cluster_id": "prod-enc", "kms_key_id": "alias/k", **target}}, Path("m.toml")).settings


def test_target_host_is_not_used_once_the_new_cluster_holds_the_source_name() -> None:
    s = settings(password_env="T", host="10.0.0.7", port=5440, sslmode="verify-ca")
    before = target_connection(s, "prod-enc")
    assert (before.host, before.port, before.sslmode) == ("10.0.0.7", 5440, "verify-ca")
    after = target_connection(s, "prod")  # cutover: the new cluster answers under the source's name
    assert after.host == "prod.example.com" and after.port == 5439
    assert after.sslmode == "verify-ca" and after.password_env == "T"


def test_without_target_credentials_the_source_login_keeps_the_target_sslmode_when_set() -> None:
    assert target_connection(settings(sslmode="verify-ca"), "prod").sslmode == "verify-ca"
    assert target_connection(settings(), "prod").sslmode == "verify-full"
    assert target_connection(settings(), "other").host is None
