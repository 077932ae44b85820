"""Issue 24, the config file and the environment as a careless or hostile user writes them:
strict validation in one place (no coercion, finite numbers in their documented ranges,
identifiers matched in full, URLs parsed at `init`, no empty values), secrets refused without
echo, files that are no config (FIFO, loop, too long, too deep, too big) refused in one line.
Each case goes through `migrator init` (or the command named) and changes nothing."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from migrator.config import Settings
from tests.cli.test_cli import good_config, write
from tests.harness import OFFLINE, _toml_value, cli, one_line_error

PASSWORD = "Tr0ub4dor&3-horse"


def _config(tmp_path: Path, **changes: dict[str, Any]) -> Path:
    """The offline config with ``changes`` merged in, written as raw TOML (not validated: the
    point is that it is wrong)."""
    data = {section: dict(values) for section, values in OFFLINE.items()}
    data["migration"]["store"] = "sqlite:///.migrator/state.db"
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    return write(tmp_path, "\n".join(f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
                                     for section, values in data.items()))


def _refused(tmp_path: Path, *fragments: str, env: dict[str, str] | None = None) -> str:
    proc = cli("init", "migrator.toml", cwd=tmp_path, env=env)
    one_line_error(proc, 2, *fragments)
    assert not (tmp_path / ".migrator").exists(), "a refused config must leave no store"
    return proc.stderr + proc.stdout


# -- secrets -------------------------------------------------------------------------------------

@pytest.mark.parametrize("section", ["source", "target"])
def test_a_password_written_where_its_variable_name_belongs_is_not_echoed(tmp_path: Path, section: str) -> None:
    _config(tmp_path, **{section: {"password_env": PASSWORD}})
    out = _refused(tmp_path, f"{section}.password_env", "NAME of an environment variable")
    assert PASSWORD not in out


@pytest.mark.parametrize("value", ["hunter2", "lowercase_name", "MY-PW", "9LIVES", "ZZQW\n", ""])
def test_password_env_must_have_the_shape_of_a_variable_name(tmp_path: Path, value: str) -> None:
    _config(tmp_path, source={"password_env": value})
    out = _refused(tmp_path, "source.password_env")
    if value.strip():
        assert value.strip() not in out


def test_webhook_url_env_is_a_variable_name_too(tmp_path: Path) -> None:
    _config(tmp_path, notify={"webhook_url_env": "https://hooks.example.com/T0k3n"})
    assert "T0k3n" not in _refused(tmp_path, "notify.webhook_url_env")


def test_endpoint_url_with_a_password_is_refused_and_masked(tmp_path: Path) -> None:
    _config(tmp_path, migration={"aws_endpoint_url": f"http://admin:{PASSWORD}@127.0.0.1:9"})
    out = _refused(tmp_path, "migration.aws_endpoint_url", "user name or password")
    assert PASSWORD not in out


def test_an_empty_password_variable_is_called_empty_not_unset(tmp_path: Path) -> None:
    from migrator.config import ConnectionSection
    from migrator.credentials import resolve
    from migrator.errors import ConfigError

    os.environ.pop("EMPTY_PW_FOR_TEST", None)
    with pytest.raises(ConfigError, match="is not set"):
        resolve(ConnectionSection(cluster_id="a", password_env="EMPTY_PW_FOR_TEST"), "source")
    os.environ["EMPTY_PW_FOR_TEST"] = ""
    try:
        with pytest.raises(ConfigError, match="is set but empty"):
            resolve(ConnectionSection(cluster_id="a", password_env="EMPTY_PW_FOR_TEST"), "source")
    finally:
        del os.environ["EMPTY_PW_FOR_TEST"]


# -- strict values -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, fragments", [
    ({"freeze": {"quiet_seconds": float("inf")}}, ["freeze.quiet_seconds", "finite"]),
    ({"freeze": {"timeout_seconds": float("nan")}}, ["freeze.timeout_seconds", "finite"]),
    ({"freeze": {"quiet_seconds": 1e300}}, ["freeze.quiet_seconds", "86400"]),
    ({"freeze": {"max_write_iops": -1}}, ["freeze.max_write_iops"]),
    ({"tables": {"concurrency": "4"}}, ["tables.concurrency", "whole number"]),
    ({"tables": {"concurrency": True}}, ["tables.concurrency", "whole number"]),
    ({"tables": {"concurrency": 4.0}}, ["tables.concurrency", "whole number"]),
    ({"tables": {"max_attempts": 10**30}}, ["tables.max_attempts"]),
    ({"source": {"port": "5439"}}, ["source.port", "whole number"]),
    ({"source": {"iam_auth": "yes"}, "migration": {}}, ["source.iam_auth", "true or false"]),
    ({"staging": {"keep": 1}}, ["staging.keep", "true or false"]),
    ({"source": {"cluster_id": "analytics\n"}}, ["source.cluster_id"]),
    ({"target": {"cluster_id": "analytics-enc\n"}}, ["target.cluster_id"]),
    ({"migration": {"name": "m1\n"}}, ["migration.name"]),
    ({"migration": {"region": "us-east-1\n"}}, ["migration.region"]),
    ({"staging": {"s3_uri": "s3://bucket/prefix/\n"}}, ["staging.s3_uri"]),
    ({"target": {"kms_key_id": ""}}, ["target.kms_key_id", "must not be empty"]),
    ({"target": {"kms_key_id": "   "}}, ["target.kms_key_id", "must not be empty"]),
    ({"staging": {"kms_key_id": ""}}, ["staging.kms_key_id", "must not be empty"]),
    ({"source": {"database": ""}}, ["source.database", "must not be empty"]),
    ({"source": {"user": ""}}, ["source.user", "must not be empty"]),
    ({"tables": {"include": [""]}}, ["tables.include", "must not be empty"]),
    ({"tables": {"include": []}}, ["tables.include"]),
    ({"migration": {"aws_endpoint_url": "not a url"}}, ["migration.aws_endpoint_url"]),
    ({"migration": {"aws_endpoint_url": "ftp://127.0.0.1:9"}}, ["migration.aws_endpoint_url", "https://"]),
    ({"migration": {"aws_endpoint_url": "http://127.0.0.1:notaport"}}, ["migration.aws_endpoint_url"]),
    ({"migration": {"aws_endpoint_url": "http://[::1"}}, ["migration.aws_endpoint_url"]),
    ({"migration": {"aws_endpoint_url": "http://bad_host!:9"}}, ["migration.aws_endpoint_url"]),
    ({"migration": {"aws_endpoint_url": ""}}, ["migration.aws_endpoint_url"]),
    ({"source": {"host": "a b"}}, ["source.host"]),
    ({"migration": {"store": ""}}, ["migration.store"]),
    ({"migration": {"store": "postgresql://u@h:notaport/db"}}, ["migration.store", "port"]),
    ({"migration": {"store": "mysql://u@h/db"}}, ["migration.store", "backend"]),
])
def test_strict_values_are_refused_at_init(tmp_path: Path, changes: dict[str, dict[str, Any]],
                                           fragments: list[str]) -> None:
    _config(tmp_path, **changes)
    _refused(tmp_path, *fragments)


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for name, field in model.model_fields.items():
        kinds = [a for a in typing.get_args(field.annotation) or (field.annotation,) if a is not type(None)]
        if any(isinstance(k, type) and issubclass(k, BaseModel) for k in kinds):
            found += _numeric_fields(next(k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)),
                                     f"{prefix}{name}.")
        elif any(k in (int, float) for k in kinds):
            found.append((f"{prefix}{name}", field))
    return found


def test_every_number_in_the_config_has_both_bounds_and_a_readme_row() -> None:
    """The validation table's rule for numbers: a key added without its range fails here."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    numeric = _numeric_fields(Settings)
    assert numeric
    for key, field in numeric:
        kinds = {type(m).__name__ for m in field.metadata}
        assert kinds & {"Ge", "Gt"} and kinds & {"Le", "Lt"}, f"{key} has no lower or no upper bound"
        field_name = key.rsplit(".", 1)[-1]
        assert f".{field_name}`" in readme, f"{key} is not in README's config table"


# -- environment overrides, validated by the rows they override ---------------------------------

@pytest.mark.parametrize("var, value, fragment", [
    ("MIGRATOR_FREEZE_QUIET_SECONDS", "abc", "freeze.quiet_seconds"),
    ("MIGRATOR_FREEZE_QUIET_SECONDS", "-5", "freeze.quiet_seconds"),
    ("MIGRATOR_FREEZE_QUIET_SECONDS", "inf", "freeze.quiet_seconds"),
    ("MIGRATOR_FREEZE_QUIET_SECONDS", "1e300", "86400"),
    ("MIGRATOR_FREEZE_TIMEOUT_SECONDS", "0", "freeze.timeout_seconds"),
    ("MIGRATOR_FREEZE_MAX_WRITE_IOPS", "nan", "freeze.max_write_iops"),
    ("MIGRATOR_WAIT_READY_SECONDS", "soon", "MIGRATOR_WAIT_READY_SECONDS"),
    ("MIGRATOR_AWS_POLL_CAP_SECONDS", "0", "MIGRATOR_AWS_POLL_CAP_SECONDS"),
    ("MIGRATOR_TABLE_RETRY_BASE_SECONDS", "-1", "MIGRATOR_TABLE_RETRY_BASE_SECONDS"),
])
@pytest.mark.parametrize("argv", [["status"], ["run", "-q"], ["init", "migrator.toml"]])
def test_environment_overrides_are_validated_like_the_file(tmp_path: Path, var: str, value: str, fragment: str,
                                                           argv: list[str]) -> None:
    good_config(tmp_path)
    proc = cli(*argv, cwd=tmp_path, env={var: value, "SRC_PW": "x"})
    one_line_error(proc, 2, var, fragment)
    assert not (tmp_path / ".migrator").exists()


def test_every_environment_override_names_a_key_of_the_config() -> None:
    from migrator.config import ENV_OVERRIDES, ENV_SECONDS

    for var, key in ENV_OVERRIDES.items():
        section, field = key.split(".")
        assert field in Settings.model_fields[section].annotation.model_fields, var  # type: ignore[union-attr]
    assert all(0 <= low < high for low, high in ENV_SECONDS.values())


# -- files that are no config --------------------------------------------------------------------

def test_a_fifo_as_config_is_refused_at_once(tmp_path: Path) -> None:
    """In a process of its own: reading a FIFO that nobody writes would hang this one."""
    import subprocess

    from tests.harness import migrator_command

    os.mkfifo(tmp_path / "migrator.toml")
    try:
        proc = subprocess.run(migrator_command("init", "migrator.toml"), cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("init hung on a FIFO")
    one_line_error(proc, 2, "not a regular file")


def test_a_symlink_loop_is_called_a_loop(tmp_path: Path) -> None:
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    one_line_error(cli("init", "a.toml", cwd=tmp_path), 2, "symbolic link loop")


def test_a_directory_as_config(tmp_path: Path) -> None:
    (tmp_path / "conf.toml").mkdir()
    one_line_error(cli("init", "conf.toml", cwd=tmp_path), 2, "is a directory")


@pytest.mark.parametrize("name", ["a" * 300 + ".toml", "/".join(["d" * 200] * 30) + "/m.toml"])
def test_a_path_too_long_is_one_short_line(tmp_path: Path, name: str) -> None:
    proc = cli("init", name, cwd=tmp_path)
    one_line_error(proc, 2, "config file")
    assert len(proc.stderr) < 400


def test_toml_nested_5000_deep(tmp_path: Path) -> None:
    write(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line_error(cli("init", "migrator.toml", cwd=tmp_path), 2, "nested too deeply")


def test_deep_tables_under_an_unknown_key(tmp_path: Path) -> None:
    write(tmp_path, "[" + ".".join(["k"] * 600) + "]\nx = 1\n")
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_a_quarter_million_unknown_keys_give_one_short_line(tmp_path: Path) -> None:
    good_config(tmp_path)
    body = (tmp_path / "migrator.toml").read_text() + "\n[tables]\n" + "".join(
        f"k{i} = 1\n" for i in range(250_000))
    (tmp_path / "migrator.toml").write_text(body)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 2)
    assert len(proc.stderr) < 3000
    assert "more than a config can be" in proc.stderr or "250000 problems" in proc.stderr


def test_many_unknown_keys_are_counted_and_a_few_listed(tmp_path: Path) -> None:
    good_config(tmp_path)
    body = (tmp_path / "migrator.toml").read_text() + "\n[freeze]\n" + "".join(
        f"{'k' * 500}{i} = 1\n" for i in range(500))
    (tmp_path / "migrator.toml").write_text(body)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 2, "500 problems", "and 490 more")
    assert len(proc.stderr) < 3000


def test_a_binary_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "migrator.toml").write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(cli("init", "migrator.toml", cwd=tmp_path), 2, "not UTF-8")
