"""The one test harness: a config builder that goes through the real pydantic model, and one
`Migration` that drives `migrator` the ways an operator and a test do.

`write_config` merges the sections a test gives over defaults (offline ones, or ones for the
sandbox when given a `SandboxClient`), validates the result with `migrator.config.parse_config`
(so a test cannot write a config the model rejects by accident) and writes it as TOML. Tests that
write a deliberately bad config keep writing raw text: that is their point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from migrator.config import LoadedConfig, Settings, load_config, parse_config
from migrator.errors import EXIT_CODES, ConfigError
from migrator.sandbox.client import SandboxClient
from migrator.store import Store

#: Sections in the order the model declares them (and the files list them).
SECTIONS: tuple[str, ...] = tuple(Settings.model_fields)
DOCUMENTED_EXIT_CODES = {code for code, _ in EXIT_CODES}

#: Offline defaults: a complete unload-copy config no AWS is asked about.
OFFLINE: dict[str, dict[str, Any]] = {
    "migration": {"name": "m1", "strategy": "unload-copy", "region": "us-east-1"},
    "source": {"cluster_id": "analytics", "password_env": "SRC_PW"},
    "target": {"cluster_id": "analytics-enc", "kms_key_id": "alias/k"},
    "staging": {"s3_uri": "s3://bucket/prefix/", "iam_role_arn": "arn:aws:iam::123456789012:role/R",
                "kms_key_id": "alias/k"},
}
SOURCE_PASSWORD_ENV = "SRC_PW"
#: The password a sandbox source gets when its cluster does not exist (the test expects a refusal).
NO_CLUSTER_PASSWORD = "no-cluster-no-password"


def sandbox_defaults(sb: SandboxClient, name: str) -> dict[str, dict[str, Any]]:
    """Defaults that reach the sandbox: its region, endpoint (plaintext), KMS key, bucket and role."""
    info = sb.info
    return {
        "migration": {"name": name, "region": info.region, "aws_endpoint_url": info.endpoint_url,
                      "sandbox_plaintext": True},
        "source": {"password_env": SOURCE_PASSWORD_ENV},
        "target": {"kms_key_id": info.kms_alias},
        "staging": {"s3_uri": f"s3://{info.bucket}/{name}/", "iam_role_arn": info.iam_role_arn,
                    "kms_key_id": info.kms_alias},
    }


def config_data(*, sandbox: SandboxClient | None = None, **sections: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config as a dict: each given section's keys over the defaults. A key or a whole section
    given as None is left out (TOML has no null). Staging has defaults only for unload-copy, the
    strategy that needs it."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise TypeError(f"unknown config section(s) {unknown}; the model has {list(SECTIONS)}")
    if sandbox is None:
        defaults = OFFLINE
    else:
        name = str((sections.get("migration") or {}).get("name") or "m1")
        defaults = sandbox_defaults(sandbox, name)
    strategy = (sections.get("migration") or {}).get("strategy") or defaults["migration"].get("strategy")
    data: dict[str, Any] = {}
    for section in SECTIONS:
        if section in sections and sections[section] is None:
            continue
        base = dict(defaults.get(section, {}))
        if section == "staging" and strategy != "unload-copy" and section not in sections:
            base = {}
        merged = {**base, **(sections.get(section) or {})}
        merged = {key: value for key, value in merged.items() if value is not None}
        if merged or section in sections:
            data[section] = merged
    return data


def check(data: Mapping[str, Any], path: Path) -> LoadedConfig:
    """The config as the product loads it; a ConfigError naming every problem otherwise."""
    return parse_config(json.loads(json.dumps(data)), path)


def check_sections(data: Mapping[str, Any], path: Path) -> None:
    """Each section on its own through its model (unknown keys, bad values, missing keys), without
    the checks across sections: for a config a test completes itself before it is loaded."""
    problems: list[str] = []
    for section, values in data.items():
        model = _section_model(section)
        try:
            model.model_validate(values)
        except ValidationError as exc:
            problems.extend(f"{section}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))


def _section_model(section: str) -> type[BaseModel]:
    annotation = Settings.model_fields[section].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    raise TypeError(f"no model for section {section}")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Sections of flat keys as TOML: `[section]`, `key = value` lines, a blank line between
    sections. Checked by reading it back."""
    blocks = []
    for section, values in data.items():
        assert _BARE_KEY.match(section) and all(_BARE_KEY.match(k) for k in values), (section, list(values))
        blocks.append("\n".join([f"[{section}]", *(f"{k} = {_toml_value(v)}" for k, v in values.items())]))
    text = "\n\n".join(blocks) + "\n"
    assert tomllib.loads(text) == json.loads(json.dumps(data)), text
    return text


def write_config(path: Path, *, sandbox: SandboxClient | None = None, complete: bool = True,
                 **sections: Mapping[str, Any] | None) -> Path:
    """Build (`config_data`), validate through the model, write TOML; returns the path.
    ``complete=False`` validates each section alone, for the rare test that appends a section itself."""
    data = config_data(sandbox=sandbox, **sections)
    if complete:
        check(data, path)
    else:
        check_sections(data, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_text(data))
    return path


# -- running migrator -------------------------------------------------------------------------

def migrator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrator", *args]


#: ``subprocess`` runs every `migrator` command of the harness in a child process again (to compare,
#: or to debug an in-process difference); unset, only the commands that must die for real do.
CLI_MODE_ENV = "MIGRATOR_TEST_CLI"
#: A run with a failpoint armed SIGKILLs itself: it must be a process of its own.
_MUST_BE_A_PROCESS = ("MIGRATOR_FAILPOINT",)


def run_migrator(args: list[str], *, cwd: Path, env: Mapping[str, str],
                 timeout: float) -> subprocess.CompletedProcess[str]:
    """`migrator ARGS` with exactly ``env`` as its environment, in ``cwd``: as `python -m migrator`
    (exit code, stdout, stderr), run in this process through click's runner (saves starting Python
    and importing boto3 and SQLAlchemy for each command), or in a child process when the command
    is to kill itself (a failpoint) or ``MIGRATOR_TEST_CLI=subprocess`` asks for it."""
    if os.environ.get(CLI_MODE_ENV) == "subprocess" or any(env.get(k) for k in _MUST_BE_A_PROCESS):
        return subprocess.run(migrator_command(*args), cwd=cwd, capture_output=True, text=True,
                              env=dict(env), timeout=timeout)
    return _in_process(args, cwd=cwd, env=env)


def _forget_process_caches() -> None:
    """What a new process would not have: the product's per-process caches of AWS sessions and
    clients (chosen from the environment when first made) and of resolved database credentials."""
    from migrator import credentials
    from migrator.aws import clients
    from migrator.strategies import recorded

    recorded._clients.cache_clear()
    with clients._LOCK:
        clients._SHARED_SESSIONS.clear()
        clients._CLIENTS.clear()
    with credentials._LOCK:
        credentials._CACHE.clear()


def _in_process(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    import logging
    import traceback

    # Modules that keep the sys.stdout they saw when first imported (alembic's Config defaults its
    # stdout at import): imported here first, they keep the real one, not a runner's closed stream.
    import alembic.config  # noqa: F401
    from typer.testing import CliRunner

    from migrator.cli import app

    # The environment the child would get: its variables set, every other one of ours unset.
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update(env)
    # A fresh process starts with an unconfigured root logger (the CLI's basicConfig and --quiet's
    # file handler apply to it); ours is given back afterwards, with pytest's capture handlers.
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    root.handlers = []
    root.setLevel(logging.WARNING)
    here = os.getcwd()
    os.chdir(cwd)
    _forget_process_caches()
    try:
        result = CliRunner().invoke(app, args, env=overrides, prog_name="python -m migrator")
    finally:
        os.chdir(here)
        for handler in root.handlers:
            handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
    stderr = result.stderr
    code = result.exit_code
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        # What Python prints for an uncaught exception, and its exit code.
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        code = 1
    return subprocess.CompletedProcess(migrator_command(*args), code, result.stdout, stderr)


def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`migrator ARGS` as a user types it (environment on top of this one); see `run_migrator`."""
    return run_migrator(list(args), cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """Bad input: one `error:` line with every fragment, a documented exit code, no traceback."""
    assert proc.returncode == code, proc.stderr
    assert code in DOCUMENTED_EXIT_CODES
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0,
             proc: subprocess.Popen[str] | None = None) -> None:
    """Poll (the store, the call log) until ``predicate()``; the subprocess must still be running."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended (rc {proc.returncode}) before {what}: {err or ''}{out or ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling observable state, not synchronising by time


_OPERATOR_KEYS: dict[tuple[str, str], dict[str, str]] = {}


def operator_keys(sb: SandboxClient, config: Path, name: str) -> dict[str, str]:
    """AWS keys of an IAM user limited to `migrator iam-policy --for operator` of ``config`` as it
    is now (one user per sandbox and policy); none for a config the model rejects (the run says so)."""
    try:
        policy = sb.operator_policy(config)
    except ConfigError:
        return {}
    key = (str(sb.directory), json.dumps(policy, sort_keys=True))
    if key not in _OPERATOR_KEYS:
        _OPERATOR_KEYS[key] = sb.operator_env(config, name=name, policy=policy)
    return _OPERATOR_KEYS[key]


@dataclass
class Migration:
    """One migration against the sandbox: its config file, the environment its runs get, and
    ways to run `migrator` and look at the outcome. Commands that take ``-c`` get this config
    unless the caller names one."""

    sb: SandboxClient
    config: Path
    env: dict[str, str]
    name: str
    source: str
    target: str | None = None
    #: The operator policy this migration's AWS keys hold (None: the keys given, left alone).
    policy: dict[str, Any] | None = None
    limited: bool = False

    @property
    def cluster_id(self) -> str:
        return self.source

    def limited_env(self) -> dict[str, str]:
        """The environment with AWS keys of an IAM user limited to `iam-policy --for operator` of the
        config as it is now (and the source's roles as they are now): a test that edits the config or
        the source gets keys for what it runs, as an operator would regenerate the policy."""
        if self.limited:
            try:
                policy = self.sb.operator_policy(self.config)
            except ConfigError:
                return self.env  # a config the model rejects: the run itself says so
            if policy != self.policy:
                self.env.update(self.sb.operator_env(self.config, name=self.name, policy=policy))
                self.policy = policy
        return self.env

    @property
    def directory(self) -> Path:
        return self.config.parent

    def _args(self, args: tuple[str, ...]) -> list[str]:
        given = any(a in ("-c", "--config") or a.startswith("--config=") for a in args)
        return list(args) if given else [*args, "-c", str(self.config)]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`migrator ARGS` as an operator runs it: exit code, stdout and stderr (`run_migrator`)."""
        return run_migrator(self._args(args), cwd=self.directory, env=self.limited_env(), timeout=timeout)

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("run", *extra)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`migrator ARGS` started in a subprocess (to be killed or waited for); stderr is kept.
        stdout is discarded so a full pipe can never stall the run."""
        return subprocess.Popen(migrator_command(*self._args(args)), cwd=self.directory, env=self.limited_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    start = popen  # the name the strategy tests use

    def invoke(self, *args: str) -> Any:
        """The real CLI in-process (typer's runner): exit code, stdout and stderr apart."""
        from typer.testing import CliRunner

        from migrator.cli import app

        _forget_process_caches()  # this migration's keys, not the clients an earlier run made
        return CliRunner().invoke(app, self._args(args), env=self.limited_env())

    def init(self) -> None:
        """`migrator init` in-process (validates the config, creates the store, registers the
        migration; no AWS involved). The CLI's own `init` is tested in tests/cli."""
        from migrator import commands

        commands.init(self.config)

    def store(self) -> Store:
        """The checkpoint store, read-only (a test looks; only the tool writes)."""
        return Store.open(load_config(self.config).store_url, read_only=True)

    def phase(self) -> str | None:
        with self.store() as store:
            found = store.get_migration(self.name)
            return found.phase if found else None

    def describe(self, cluster_id: str | None = None) -> dict[str, Any]:
        return self.sb.client("redshift").describe_clusters(  # type: ignore[no-any-return]
            ClusterIdentifier=cluster_id or self.source)["Clusters"][0]

    def mutating_calls(self, *cluster_ids: str) -> list[dict[str, Any]]:
        ids = set(cluster_ids or (self.source,))
        return [c for c in self.sb.calls() if c.get("cluster_id") in ids]

    def table_digests(self, cluster_id: str) -> dict[str, tuple[int, str]]:
        """Rows and an order-independent digest per user table, read straight from PostgreSQL
        (the sandbox's own schema pg_sandbox and the tool's bookkeeping left out)."""
        import psycopg

        from migrator.names import table_key

        out: dict[str, tuple[int, str]] = {}
        with psycopg.connect(self.sb.admin_dsn(cluster_id)) as pg:
            tables = pg.execute(
                "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'pg_sandbox', "
                "'migrator_bookkeeping') and n.nspname not like 'pg_toast%' order by 1, 2").fetchall()
            for schema, table in tables:
                ident = psycopg.sql.Identifier(schema, table)
                row = pg.execute(psycopg.sql.SQL(
                    "select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') "
                    "from {} t").format(ident)).fetchone()
                assert row is not None
                out[table_key(schema, table)] = (int(row[0]), str(row[1]))  # "a.b".c and a."b.c" stay two
        return out


def sandbox_migration(sb: SandboxClient, directory: Path, *, name: str, strategy: str,
                      source: Mapping[str, Any], filename: str = "migrator.toml", complete: bool = True,
                      env: Mapping[str, str] | None = None, **sections: Mapping[str, Any] | None) -> Migration:
    """A config for a sandbox cluster (written through `write_config`) and the `Migration` that runs
    it. The source's password reaches the runs under its ``password_env`` (the cluster's own, or a
    placeholder when the cluster does not exist); ``env`` adds to or overrides the environment."""
    config = write_config(directory / filename, sandbox=sb, complete=complete,
                          migration={"name": name, "strategy": strategy, **(sections.pop("migration", None) or {})},
                          source=source, **sections)
    data = tomllib.loads(config.read_text())
    run_env = {**os.environ, **sb.env()}
    run_env.pop("MIGRATOR_CONFIG", None)
    source_id = str(data["source"]["cluster_id"])
    password_env = data["source"].get("password_env")
    if password_env:
        run_env[password_env] = (sb.cluster_info(source_id).password if source_id in sb.cluster_ids()
                                 else NO_CLUSTER_PASSWORD)
    run_env.update(env or {})
    target = data.get("target", {}).get("cluster_id")
    # The runs act as an IAM user limited to `migrator iam-policy --for operator` of this config,
    # so every run proves the policy (unless the test gives its own keys).
    limited = not (env and "AWS_ACCESS_KEY_ID" in env)
    return Migration(sb, config, run_env, name, source_id, target, limited=limited)


def make_cluster(sb: SandboxClient, cluster_id: str, *, tables: int = 3, rows: int = 60, encrypted: bool = False,
                 kms_key_id: str | None = None, node_type: str = "ra3.xlplus") -> None:
    """A sandbox cluster with ``tables`` seeded tables (seeded by its name's length)."""
    from migrator.sandbox.seed import seed_cluster

    sb.create_cluster(cluster_id, encrypted=encrypted, kms_key_id=kms_key_id, node_type=node_type)
    if tables:
        seed_cluster(sb.admin_dsn(cluster_id), tables=tables, rows=rows, seed=len(cluster_id))
