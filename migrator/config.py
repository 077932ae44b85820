"""The migration config: one TOML file, validated all at once.

Secrets never live in the file: a password comes from an environment variable
named here, from AWS Secrets Manager, or from IAM (`get_cluster_credentials`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from migrator import routes
from migrator.errors import ConfigError
from migrator.paths import DEFAULT_CONFIG_NAME  # noqa: F401 (re-exported)

#: The strategy names a config may give (each a route in migrator.routes).
STRATEGIES: tuple[str, ...] = routes.names()
DEFAULT_STORE = "sqlite:///.migrator/state.db"

_SECRET_KEY = re.compile(r"(password|secret_access_key|secret|token)$", re.IGNORECASE)
_IDENT = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_QUERY_GROUP = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
#: The TLS modes redshift_connector implements; both verify the server's certificate chain.
SSL_MODES = ("verify-ca", "verify-full")


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): the local sandbox only."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MigrationSection(_Section):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    #: One of the routes in migrator.routes.
    strategy: str
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    store: str = DEFAULT_STORE
    #: Only for rehearsals against a local AWS stand-in (the sandbox); never set in production.
    aws_endpoint_url: str | None = None
    #: Connect to the warehouse without TLS. Only for the local sandbox (whose wire proxy does not
    #: speak TLS): refused unless aws_endpoint_url and the cluster endpoints are on loopback.
    sandbox_plaintext: bool = False

    @field_validator("strategy")
    @classmethod
    def _a_known_route(cls, value: str) -> str:
        known = routes.names()
        if value not in known:
            listed = ", ".join(repr(n) for n in known[:-1]) + (" or " if len(known) > 1 else "") + repr(known[-1])
            raise ValueError(f"Input should be {listed}")
        return value

    @field_validator("sandbox_plaintext")
    @classmethod
    def _plaintext_only_for_a_loopback_sandbox(cls, value: bool, info: ValidationInfo) -> bool:
        endpoint = info.data.get("aws_endpoint_url")
        if value and not (endpoint and is_loopback_host(url_host(endpoint))):
            raise ValueError("only allowed with aws_endpoint_url on a loopback address (the local sandbox); every "
                             "real cluster is reached over TLS")
        return value


class ConnectionSection(_Section):
    cluster_id: str
    database: str = "dev"
    user: str = "awsuser"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    password_env: str | None = None
    secret_arn: str | None = None
    iam_auth: bool = False
    #: TLS verification: verify-full (certificate chain and host name) or verify-ca (chain only,
    #: e.g. when `host` is an address the certificate does not name). TLS itself is always on.
    sslmode: str = "verify-full"
    #: The WLM query group every session of the tool sets (SET query_group), so its UNLOAD, COPY and
    #: checksums run in the queue WLM routes that group to; preflight checks the route exists.
    query_group: str | None = None

    @field_validator("query_group")
    @classmethod
    def _query_group(cls, value: str | None) -> str | None:
        if value is not None and not _QUERY_GROUP.match(value):
            raise ValueError("must be 1-64 letters, digits, underscores, hyphens or dots (a WLM query group name)")
        return value

    @field_validator("sslmode")
    @classmethod
    def _sslmode(cls, value: str) -> str:
        if value not in SSL_MODES:
            raise ValueError(f"{value!r} is not supported: use \"verify-full\" or \"verify-ca\" (TLS is always on "
                             "and the certificate is always verified; redshift_connector has no other modes)")
        return value

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        if not _IDENT.match(value) or "--" in value or value.endswith("-"):
            raise ValueError("must be 1-63 lowercase letters, digits or hyphens, starting with a letter")
        return value

    @model_validator(mode="after")
    def _one_credential_source(self) -> "ConnectionSection":
        sources = [s for s in (self.password_env, self.secret_arn, self.iam_auth or None) if s]
        if len(sources) > 1:
            raise ValueError("choose one of password_env, secret_arn, iam_auth")
        return self


class TargetSection(ConnectionSection):
    cluster_id: str = ""  # type: ignore[assignment]
    encryption: Literal["kms", "hsm", "none"] = "kms"
    kms_key_id: str | None = None
    hsm_client_certificate: str | None = None
    hsm_configuration: str | None = None
    handle_snapshot_copy: bool = False
    #: The new cluster's node type when the source's is retired (dc1/ds1/ds2) or should change.
    node_type: str | None = None
    #: The port the new cluster listens on, when the source's is not allowed (RA3: 5431-5455, 8191-8215).
    cluster_port: int | None = Field(default=None, ge=1150, le=65535)

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        if value == "":
            return value
        return ConnectionSection._cluster_id(value)

    @model_validator(mode="after")
    def _encryption_settings(self) -> "TargetSection":
        if self.encryption == "hsm" and not (self.hsm_client_certificate and self.hsm_configuration):
            raise ValueError("encryption = \"hsm\" needs hsm_client_certificate and hsm_configuration")
        if self.encryption != "hsm" and (self.hsm_client_certificate or self.hsm_configuration):
            raise ValueError("hsm_* settings are only valid with encryption = \"hsm\"")
        return self


class StagingSection(_Section):
    s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")]
    iam_role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")]
    kms_key_id: str
    keep: bool = False
    format: Literal["auto", "parquet", "csv"] = "auto"


#: 2 GB of a table (svv_table_info.size, 1 MB blocks): at a COPY rate of tens of MB/s per slice on
#: a few-node cluster that is a part of a minute or two, so a crash redoes about that much, while a
#: 2 TB table stays at ~1000 parts (a few thousand statements). Tables of the test suite stay whole.
DEFAULT_PART_SIZE = "2GB"
_PART_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|tb|rows?)?\s*$", re.IGNORECASE)
_UNITS_MB = {"kb": 1 / 1024, "mb": 1.0, "gb": 1024.0, "tb": 1024.0 * 1024}


class PartThreshold(BaseModel):
    """`tables.part_size` parsed: a table is split when it holds more than ``mb`` megabytes (as the
    catalogue counts them) or more than ``rows`` rows (exactly one of the two is set)."""

    mb: float | None = None
    rows: int | None = None

    def parts_for(self, size_mb: float, rows: int) -> int:
        """How many parts a table of this size gets (1: not split)."""
        import math

        if self.rows:
            return max(1, math.ceil(rows / self.rows))
        assert self.mb
        return max(1, math.ceil(size_mb / self.mb))


def parse_part_size(value: str) -> PartThreshold | None:
    """"2GB" / "500MB" / "500000 rows" / "0" (off); ValueError names the accepted forms."""
    m = _PART_SIZE.match(str(value))
    if not m:
        raise ValueError(f"tables.part_size {value!r}: give a size such as \"2GB\" or \"500MB\", a row count "
                         "such as \"500000 rows\", or \"0\" to turn parts off")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    if number == 0:
        return None
    if unit.startswith("row"):
        return PartThreshold(rows=int(number))
    if not unit:
        raise ValueError(f"tables.part_size {value!r}: name the unit (MB, GB, TB or rows), or \"0\" for no parts")
    return PartThreshold(mb=number * _UNITS_MB[unit])


class TablesSection(_Section):
    include: list[str] = Field(default_factory=lambda: ["*.*"])
    exclude: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=5, ge=1, le=100)
    #: How many times a table is copied while production keeps writing to it before it is left for
    #: the cutover window (which copies it once more with writes frozen).
    live_copies: int = Field(default=3, ge=1, le=100)
    #: Tables larger than this are split into parts (ranges of a column): a size of the table as the
    #: catalogue reports it ("2GB", "500MB", "1TB") or a row count ("500000 rows"); "0" turns parts off.
    part_size: str = DEFAULT_PART_SIZE

    @field_validator("part_size")
    @classmethod
    def _part_size(cls, value: str) -> str:
        parse_part_size(value)
        return value

    def part_threshold(self) -> "PartThreshold | None":
        return parse_part_size(self.part_size)


class FreezeSection(_Section):
    """The write-freeze guard: no more than ``max_write_iops`` (CloudWatch WriteIOPS) on the
    source for ``quiet_seconds``, waited for at most ``timeout_seconds``."""

    max_write_iops: float = Field(default=0.0, ge=0)
    quiet_seconds: float = Field(default=300.0, gt=0)
    timeout_seconds: float = Field(default=900.0, gt=0)
    #: Catch-up passes the cutover window tries before it says writes did not stop.
    catch_up_passes: int = Field(default=10, ge=1, le=1000)


class NotifySection(_Section):
    """Where to tell people that a gate waits, a run failed or the migration completed."""

    sns_topic_arn: Annotated[str | None, Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")] = None
    #: Environment variable holding the webhook URL (such URLs usually carry a token).
    webhook_url_env: str | None = None

    def webhook_url(self) -> str | None:
        import os

        if not self.webhook_url_env:
            return None
        url = os.environ.get(self.webhook_url_env, "").strip()
        return url if url.startswith(("https://", "http://")) else None


class Settings(_Section):
    migration: MigrationSection
    source: ConnectionSection
    target: TargetSection = TargetSection()
    staging: StagingSection | None = None
    tables: TablesSection = TablesSection()
    freeze: FreezeSection = FreezeSection()
    notify: NotifySection = NotifySection()

    @model_validator(mode="after")
    def _strategy_needs(self) -> "Settings":
        problems = self.route.config_problems(source_cluster=self.source.cluster_id,
                                              target_cluster=self.target.cluster_id,
                                              staging=self.staging is not None, encryption=self.target.encryption)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def route(self) -> routes.Route:
        """The route (strategy) this config chose."""
        return routes.route(self.migration.strategy)


class LoadedConfig(BaseModel):
    """Settings plus where they came from."""

    model_config = ConfigDict(frozen=True)

    path: Path
    settings: Settings

    @property
    def store_url(self) -> str:
        return resolve_store_url(self.settings.migration.store, self.path.parent)

    def work_fingerprint(self) -> dict[str, Any]:
        """The settings that decide what finished work means; changing these invalidates it."""
        s = self.settings
        return {
            "strategy": s.migration.strategy,
            "region": s.migration.region,
            "source": s.source.model_dump(include={"cluster_id", "database"}),
            "target": s.target.model_dump(include={"cluster_id", "database", "encryption", "kms_key_id",
                                                    "hsm_client_certificate", "hsm_configuration"}),
            "staging": s.staging.model_dump(include={"s3_uri", "kms_key_id", "format"}) if s.staging else None,
            "tables": s.tables.model_dump(include={"include", "exclude"}),
        }

    def config_hash(self) -> str:
        canonical = json.dumps(self.work_fingerprint(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_store_url(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the config file's directory, not the shell's."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


def _secret_paths(data: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(value, (dict, list)):
                found.extend(_secret_paths(value, here))
            elif _SECRET_KEY.search(str(key)) and not str(key).endswith(("_env", "_arn")):
                found.append(here)
    return found


def _format_pydantic(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
        if item["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif item["type"] == "missing":
            msg = "required key missing"
        else:
            msg = str(item["msg"]).removeprefix("Value error, ")
        if loc:
            lines.append(f"{loc}: {msg}")
        else:
            lines.extend(msg.split("; "))
    return lines


def parse_config(data: dict[str, Any], path: Path) -> LoadedConfig:
    secrets = _secret_paths(data)
    problems = [f"{p}: secrets must not be written in the config; use password_env, secret_arn or iam_auth"
                for p in secrets]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _format_pydantic(exc) if p.split(":", 1)[0] not in secrets)
    if problems or settings is None:
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise ConfigError(f"{path}: {count}: " + "; ".join(problems), hint="fix the file and re-run")
    return LoadedConfig(path=path.resolve(), settings=settings)


def load_config(path: Path | str) -> LoadedConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found",
                          hint="pass the path of your migration's TOML file with --config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(data, path)
