"""The migration config: one TOML file, validated all at once, in this module only.

Secrets never live in the file: a password comes from an environment variable
named here, from AWS Secrets Manager, or from IAM (`get_cluster_credentials`).

Validation is declared per key, as rows of the section models below: every section is strict
(no coercion from strings or booleans, finite numbers only, patterns matched in full) and every
number carries its documented range (`tests/cli/test_validation.py` refuses a numeric key without
both bounds). The environment overrides (ENV_OVERRIDES) are validated by the same rows. A new key
is one new row: its type, its bounds, and a line in README's config table.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from migrator import routes
from migrator.errors import ConfigError, shorten
from migrator.paths import DEFAULT_CONFIG_NAME  # noqa: F401 (re-exported)

#: The strategy names a config may give (each a route in migrator.routes).
STRATEGIES: tuple[str, ...] = routes.names()
DEFAULT_STORE = "sqlite:///.migrator/state.db"

_SECRET_KEY = re.compile(r"(password|secret_access_key|secret|token)$", re.IGNORECASE)
_IDENT = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")
#: What an environment variable name looks like (POSIX: upper-case letters, digits, underscore).
ENV_NAME = re.compile(r"\A[A-Z_][A-Z0-9_]{0,127}\Z")
#: A host name (RFC 1123 labels, as botocore checks endpoint hosts) or an IP address.
_HOST_LABELS = re.compile(r"\A((?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)*((?!-)[A-Za-z0-9-]{1,63}(?<!-))\Z")
#: The biggest config file read (a migration config is a few hundred bytes).
MAX_CONFIG_BYTES = 1 << 20
#: At most this many problems are listed in the one error line (the count says how many in all).
MAX_PROBLEMS = 10
_QUERY_GROUP = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
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


def _env_name(value: str) -> str:
    # Never echo the value: the commonest mistake here is the password itself.
    if not ENV_NAME.match(value):
        raise ValueError("must be the NAME of an environment variable (upper-case letters, digits and _, e.g. "
                         "SOURCE_PW), not its value; if you wrote a password here, remove it and change that "
                         "password")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty (leave the key out for the default)")
    if value != value.strip() or any(c in value for c in "\r\n\t\0"):
        raise ValueError("must not start or end with spaces or hold control characters")
    return value


def valid_host(host: str) -> bool:
    """A DNS name or an IP address (botocore's endpoint check, matched in full)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    return len(host) <= 255 and bool(_HOST_LABELS.match(host.removesuffix(".")))


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be an AWS endpoint URL (parsed as botocore will), or None."""
    if any(c.isspace() for c in url):
        return "is not a URL (it holds spaces)"
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        return f"is not a valid URL ({str(exc).split(':')[0]})"
    if parts.scheme not in ("http", "https"):
        return "must start with https:// or http://"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (AWS signs requests; a password here would be shown)"
    if not host or not valid_host(host):
        return "has no valid host name"
    if port == 0:
        return "has port 0"
    return None


def store_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a checkpoint store URL, or None (shown masked: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url.strip() or url != url.strip():
        return "must not be empty or start or end with spaces"
    try:
        parsed = make_url(url)
        port = parsed.port
    except ArgumentError:
        return "is not a valid store URL (e.g. sqlite:///.migrator/state.db or postgresql+psycopg://HOST/DB)"
    except ValueError:
        return "has a port that is not a number"
    if port is not None and not 1 <= port <= 65535:
        return "has a port outside 1-65535"
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"names the backend {shorten(backend, 40)!r}: use sqlite:///PATH or postgresql+psycopg://..."
    if backend == "postgresql" and parsed.host and not valid_host(parsed.host):
        return "has no valid host name"
    return None


def _store_url(value: str) -> str:
    problem = store_url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _endpoint(value: str) -> str:
    problem = endpoint_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _host(value: str) -> str:
    if not valid_host(value):
        raise ValueError("must be a host name or an IP address")
    return value


#: A string that must hold a value when given (not "", no stray spaces).
Text = Annotated[str, Field(max_length=2048), AfterValidator(_text)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class _Section(BaseModel):
    # strict: "4" and true are not 4; allow_inf_nan: inf and nan are no numbers of seconds;
    # python-re: patterns below end in \Z (a `$` would let a trailing newline through).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              regex_engine="python-re")


class MigrationSection(_Section):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")]
    #: One of the routes in migrator.routes.
    strategy: str
    region: Annotated[str, Field(max_length=40, pattern=r"\A[a-z]{2}(-[a-z]+)+-\d\Z")]
    store: Annotated[str, Field(max_length=4096), AfterValidator(_store_url)] = DEFAULT_STORE
    #: Only for rehearsals against a local AWS stand-in (the sandbox); never set in production.
    aws_endpoint_url: Annotated[str | None, Field(max_length=2048), AfterValidator(
        lambda v: None if v is None else _endpoint(v))] = None
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
    database: Annotated[str, Field(max_length=127), AfterValidator(_text)] = "dev"
    user: Annotated[str, Field(max_length=128), AfterValidator(_text)] = "awsuser"
    host: Annotated[str | None, Field(max_length=255), AfterValidator(lambda v: None if v is None else _host(v))
                    ] = None
    port: int | None = Field(default=None, ge=1, le=65535)
    password_env: EnvName | None = None
    secret_arn: Annotated[str | None, Field(max_length=2048,
                                            pattern=r"\Aarn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+\Z")
                          ] = None
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
            raise ValueError(f"{shorten(value, 40)!r} is not supported: use \"verify-full\" or \"verify-ca\" (TLS is always on "
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
    #: Left out: the account's default key; given: exactly this key ("" is refused, not the default).
    kms_key_id: Text | None = None
    hsm_client_certificate: Text | None = None
    hsm_configuration: Text | None = None
    handle_snapshot_copy: bool = False
    #: The new cluster's node type when the source's is retired (dc1/ds1/ds2) or should change.
    node_type: Annotated[str | None, Field(max_length=64, pattern=r"\A[a-z0-9]+\.[a-z0-9.]+\Z")] = None
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
    s3_uri: Annotated[str, Field(max_length=1024, pattern=r"\As3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?\Z")]
    iam_role_arn: Annotated[str, Field(max_length=2048, pattern=r"\Aarn:aws[a-z-]*:iam::\d{12}:role/\S+\Z")]
    kms_key_id: Text
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
    include: list[Text] = Field(default_factory=lambda: ["*.*"], min_length=1, max_length=10_000)
    exclude: list[Text] = Field(default_factory=list, max_length=10_000)
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

    max_write_iops: float = Field(default=0.0, ge=0, le=1_000_000)
    #: 0 only for rehearsals (no quiet period: the latest datapoint decides).
    quiet_seconds: float = Field(default=300.0, ge=0, le=86_400)
    timeout_seconds: float = Field(default=900.0, gt=0, le=7 * 86_400)
    #: Catch-up passes the cutover window tries before it says writes did not stop.
    catch_up_passes: int = Field(default=10, ge=1, le=1000)


class NotifySection(_Section):
    """Where to tell people that a gate waits, a run failed or the migration completed."""

    sns_topic_arn: Annotated[str | None, Field(pattern=r"\Aarn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}\Z")] = None
    #: Environment variable holding the webhook URL (such URLs usually carry a token).
    webhook_url_env: EnvName | None = None

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
        loc = ".".join(shorten(str(p), 60) for p in item["loc"] if not str(p).startswith("function-after"))
        if item["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif item["type"] == "missing":
            msg = "required key missing"
        elif item["type"] in _TYPE_MESSAGES:
            msg = _TYPE_MESSAGES[item["type"]]
        else:
            msg = str(item["msg"]).removeprefix("Value error, ")
        if loc:
            lines.append(f"{loc}: {msg}")
        else:
            lines.extend(msg.split("; "))
    return lines


#: Pydantic's words for a value of the wrong type, said so that the fix is plain (strict: no coercion).
_TYPE_MESSAGES = {
    "int_type": "must be a whole number, written without quotes",
    "float_type": "must be a number, written without quotes",
    "bool_type": "must be true or false, written without quotes",
    "string_type": "must be a string in quotes",
    "list_type": "must be a list, e.g. [\"a\", \"b\"]",
    "finite_number": "must be a finite number (not inf or nan)",
    "model_type": "must be a table ([section])",
    "int_from_float": "must be a whole number",
}


def _problem_line(path: Path, problems: list[str]) -> str:
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    shown = [shorten(p, 300) for p in problems[:MAX_PROBLEMS]]
    more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    return f"{shorten(str(path))}: {count}: " + "; ".join(shown) + more


def parse_config(data: dict[str, Any], path: Path) -> LoadedConfig:
    try:
        secrets = _secret_paths(data)
    except RecursionError:
        raise ConfigError(f"{shorten(str(path))}: nested too deeply", hint="fix the file and re-run") from None
    problems = [f"{p}: secrets must not be written in the config; use password_env, secret_arn or iam_auth"
                for p in secrets]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _format_pydantic(exc) if p.split(":", 1)[0] not in secrets)
    except RecursionError:
        problems.append("nested too deeply")
    if problems or settings is None:
        raise ConfigError(_problem_line(path, problems), hint="fix the file and re-run")
    return LoadedConfig(path=path.resolve(), settings=settings)


def _read_config(path: Path) -> str:
    """The file's text, or a ConfigError saying why not (never hangs on a FIFO, never reads a
    device or a huge file, never shows the OS's message with the whole path again)."""
    shown = shorten(str(path))
    where = "pass the path of your migration's TOML file with --config"
    try:
        info = path.stat()
    except OSError as exc:
        reason = {errno.ENOENT: "not found", errno.ENOTDIR: "not found (a part of its path is a file)",
                  errno.ELOOP: "is a symbolic link loop", errno.ENAMETOOLONG: "has a path too long for the system",
                  errno.EACCES: "cannot be reached (permission denied)"}.get(exc.errno or 0)
        raise ConfigError(f"config file {shown} {reason or 'cannot be read: ' + os.strerror(exc.errno or 0)}",
                          hint=where) from None
    except ValueError:  # an embedded NUL byte
        raise ConfigError("config file path holds a NUL byte", hint=where) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"config file {shown} is a directory", hint=where)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"config file {shown} is not a regular file (a FIFO, socket or device)", hint=where)
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {shown} is {info.st_size} bytes, more than a config can be "
                          f"({MAX_CONFIG_BYTES} bytes)", hint=where)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open still returns.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {shown} cannot be read: {os.strerror(exc.errno or 0)}", hint=where) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {shown} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8") from None


def load_config(path: Path | str) -> LoadedConfig:
    path = Path(path)
    text = _read_config(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shorten(str(path))}: not valid TOML: {shorten(str(exc), 200)}") from None
    except RecursionError:
        raise ConfigError(f"{shorten(str(path))}: not valid TOML: nested too deeply") from None
    loaded = parse_config(data, path)
    check_environment()
    return loaded


# -- environment overrides ----------------------------------------------------------------------

#: Environment variables that override a setting for rehearsals (the sandbox cannot wait five
#: minutes): variable -> the config key whose row validates it. An empty variable counts as unset.
ENV_OVERRIDES: dict[str, str] = {
    "MIGRATOR_FREEZE_MAX_WRITE_IOPS": "freeze.max_write_iops",
    "MIGRATOR_FREEZE_QUIET_SECONDS": "freeze.quiet_seconds",
    "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "freeze.timeout_seconds",
}
#: Timing knobs of no config key (rehearsals and tests): variable -> (exclusive low, inclusive high) seconds.
ENV_SECONDS: dict[str, tuple[float, float]] = {
    "MIGRATOR_AWS_POLL_CAP_SECONDS": (0.0, 3600.0),
    "MIGRATOR_TABLE_RETRY_BASE_SECONDS": (0.0, 3600.0),
    **{f"MIGRATOR_WAIT_{name}_SECONDS": (0.0, 7 * 86_400.0) for name in ("READY", "SWAP", "DELETE", "DNS")},
}
_DECIMAL = re.compile(r"\A[0-9]{1,12}(\.[0-9]{1,12})?([eE][+-]?[0-9]{1,3})?\Z")


def environment_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with the environment overrides, each checked by the rule of the key it
    overrides (or its documented range); the values are numbers, so showing them is safe."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    sections = {"freeze": FreezeSection}
    for var, key in ENV_OVERRIDES.items():
        raw = env.get(var)
        if not raw:
            continue
        section, field = key.split(".", 1)
        if not _DECIMAL.match(raw):
            problems.append(f"{var}={shorten(raw, 30)!r}: must be a number without sign or unit (it overrides {key})")
            continue
        try:
            sections[section].model_validate({field: float(raw)})
        except ValidationError as exc:
            problems.append(f"{var}={raw}: " + "; ".join(p.split(": ", 1)[-1] for p in _format_pydantic(exc))
                            + f" (it overrides {key})")
    for var, (low, high) in ENV_SECONDS.items():
        raw = env.get(var)
        if not raw:
            continue
        value = float(raw) if _DECIMAL.match(raw) else math.nan
        if not low < value <= high:
            problems.append(f"{var}={shorten(raw, 30)!r}: must be a number of seconds above {low:g}, "
                            f"at most {high:g}")
    return problems


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    problems = environment_problems(environ)
    if problems:
        raise ConfigError("environment: " + "; ".join(problems[:MAX_PROBLEMS]),
                          hint="unset the variable or give a valid value")
