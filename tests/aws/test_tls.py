"""TLS to the warehouse is always on, with an explicit sslmode; plaintext only through the
sandbox-only switch, never implied by an AWS endpoint override."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrator.config import is_loopback_host
from migrator.errors import ConfigError, SecurityError
from migrator.sandbox.client import SandboxClient
from migrator.warehouse.connection import SANDBOX_PLAINTEXT, Session, Tls, connect_section, tls_for
from tests.conftest import make_config


def test_tls_stays_on_with_an_aws_endpoint_override(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite://", migration={"aws_endpoint_url": "http://127.0.0.1:5000"})
    s = config.settings
    assert tls_for(s, s.source, "127.0.0.1") == Tls(enabled=True, sslmode="verify-full")


def test_sslmode_is_configurable_per_section(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite://", source={"sslmode": "verify-ca"}, target={"sslmode": "verify-full"})
    s = config.settings
    assert tls_for(s, s.source, "db.example.com") == Tls(True, "verify-ca")
    assert tls_for(s, s.target, "db.example.com", where="target") == Tls(True, "verify-full")


@pytest.mark.parametrize("mode", ["require", "disable", "prefer", "VERIFY-FULL"])
def test_unsupported_sslmode_is_one_config_line(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, "sqlite://", source={"sslmode": mode})
    line = info.value.one_line()
    assert "source.sslmode" in line and "verify-full" in line and "\n" not in line


@pytest.mark.parametrize("endpoint", [None, "https://redshift.us-east-1.amazonaws.com", "http://10.0.0.5:5000",
                                      "http://127.0.0.1.evil.example:5000"])
def test_sandbox_plaintext_refused_without_a_loopback_endpoint(tmp_path: Path, endpoint: str | None) -> None:
    migration: dict[str, Any] = {"sandbox_plaintext": True}
    if endpoint:
        migration["aws_endpoint_url"] = endpoint
    with pytest.raises(ConfigError, match="migration.sandbox_plaintext: only allowed with aws_endpoint_url on a "
                                          "loopback address"):
        make_config(tmp_path, "sqlite://", migration=migration)


def test_sandbox_plaintext_only_towards_loopback_hosts(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite://",
                         migration={"aws_endpoint_url": "http://localhost:5000", "sandbox_plaintext": True})
    s = config.settings
    assert tls_for(s, s.source, "127.0.0.1") == SANDBOX_PLAINTEXT
    with pytest.raises(SecurityError, match="not a loopback address"):
        tls_for(s, s.source, "analytics.abc123.us-east-1.redshift.amazonaws.com")


def test_loopback_hosts() -> None:
    assert all(is_loopback_host(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback_host(h) for h in ("10.0.0.1", "127.0.0.1.nip.io", "", None, "example.com"))


def test_connect_section_against_the_sandbox(sandbox: SandboxClient, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    monkeypatch.setenv("SRC_PW", info.password)
    overrides = {"source": {"cluster_id": sandbox.info.source_cluster_id, "database": info.database, "user": info.user}}
    plain = make_config(tmp_path, "sqlite://", migration={"aws_endpoint_url": sandbox.info.endpoint_url,
                                                          "sandbox_plaintext": True}, **overrides).settings
    with Session(connect_section(plain, plain.source, info.host, info.port, where="source", autocommit=True)) as s:
        assert s.run("select 1") == [(1,)]
    tls = make_config(tmp_path, "sqlite://", migration={"aws_endpoint_url": sandbox.info.endpoint_url},
                      **overrides).settings
    with pytest.raises(SecurityError, match="Server refuses SSL"):
        connect_section(tls, tls.source, info.host, info.port, where="source")
