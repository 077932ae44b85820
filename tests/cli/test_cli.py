"""The CLI as a user meets it: one clear line per bad input, a documented exit code,
and nothing written. Runs the real entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from migrator.store import db
from tests.conftest import CONFIG_TOML
from tests.harness import cli, one_line_error, operator_keys, write_config

__all__ = ["cli", "good_config", "one_line_error", "write"]

LOCAL_STORE = "sqlite:///.migrator/state.db"


def write(tmp_path: Path, body: str, name: str = "migrator.toml") -> Path:
    """A config file as raw text: for configs that are meant to be wrong."""
    path = tmp_path / name
    path.write_text(body)
    return path


def good_config(tmp_path: Path, **sections: dict[str, object]) -> Path:
    """The offline default config (validated), its store under ./.migrator."""
    migration = {"store": LOCAL_STORE, **sections.pop("migration", {})}
    return write_config(tmp_path / "migrator.toml", migration=migration, **sections)


def test_init_status_history_graph_happy_path(tmp_path: Path) -> None:
    good_config(tmp_path)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "created" in proc.stdout
    status = cli("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["phase"] == "created" and data["migration"] == "m1"
    history = cli("history", "--json", cwd=tmp_path)
    assert json.loads(history.stdout)["events"][0]["trigger"] == "created"
    graph = cli("graph", "--strategy", "table", "--format", "dot", cwd=tmp_path)
    assert graph.stdout.startswith('digraph "table"') and '"loading" -> "loaded"' in graph.stdout


def test_status_and_history_never_write(tmp_path: Path) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    store = tmp_path / ".migrator" / "state.db"
    for extra in ("state.db-wal", "state.db-shm"):
        (tmp_path / ".migrator" / extra).unlink(missing_ok=True)
    os.chmod(store, 0o400)  # any write attempt would now fail loudly
    before = store.read_bytes()
    assert cli("status", cwd=tmp_path).returncode == 0
    assert cli("history", cwd=tmp_path).returncode == 0
    assert store.read_bytes() == before


@pytest.mark.parametrize("body, fragments", [
    ("[migration\nname = 1", ["not valid TOML"]),
    (CONFIG_TOML.format(store="x").replace('"unload-copy"', '"teleport"'), ["migration.strategy"]),
    ('[migration]\nname = "m"\nstrategy = "modify"\nregion = "us-east-1"\n', ["source: required key missing"]),
    (CONFIG_TOML.format(store="x").replace("password_env", "pasword_env"),
     ["source.pasword_env: unknown key"]),
    (CONFIG_TOML.format(store="x").replace('password_env = "SRC_PW"', 'password = "hunter2"'),
     ["source.password: secrets must not be written"]),
])
def test_bad_config_one_line_no_state(tmp_path: Path, body: str, fragments: list[str]) -> None:
    write(tmp_path, body)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 2, *fragments)
    assert "hunter2" not in proc.stderr
    assert not (tmp_path / ".migrator").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    body = CONFIG_TOML.format(store="x").replace('"unload-copy"', '"teleport"').replace(
        "password_env", "pasword_env") + "\n[tables]\nconcurency = 2\n"
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    write(tmp_path, body)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    # store = "x" is no store URL: the fourth problem
    one_line_error(proc, 2, "4 problems", "migration.store", "migration.strategy", "source.pasword_env",
                   "tables.concurency")


def test_missing_config(tmp_path: Path) -> None:
    one_line_error(cli("status", cwd=tmp_path), 2, "migrator.toml not found")
    one_line_error(cli("init", "nope.toml", cwd=tmp_path), 2, "nope.toml not found")


def test_status_without_store(tmp_path: Path) -> None:
    good_config(tmp_path)
    one_line_error(cli("status", cwd=tmp_path), 3, "no checkpoint store", "migrator init")
    assert not (tmp_path / ".migrator").exists()


def test_unreachable_store_url(tmp_path: Path) -> None:
    from migrator.sandbox.postgres import free_port

    url = f"postgresql+psycopg://u:topsecret@127.0.0.1:{free_port()}/db"
    good_config(tmp_path, migration={"store": url})
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 3, "cannot reach")
    assert "topsecret" not in proc.stderr + proc.stdout


def test_store_from_newer_version(tmp_path: Path) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / '.migrator' / 'state.db'}"
    engine = db.create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    one_line_error(cli("status", cwd=tmp_path), 3, "newer than this migrator")
    one_line_error(cli("run", cwd=tmp_path), 3, "newer than this migrator")


def test_preflight_failure_exit_code_and_nothing_written(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    """A run whose preflight fails (the source does not exist) says so in one line and stays resumable."""
    good_config(tmp_path, migration={"aws_endpoint_url": sandbox.info.endpoint_url, "sandbox_plaintext": True})
    env = {**sandbox.env(), **operator_keys(sandbox, tmp_path / "migrator.toml", "cli")}
    env["SRC_PW"] = env["MIGRATOR_SANDBOX_PASSWORD"]  # preflight logs in to check the user's grants
    assert cli("init", "migrator.toml", cwd=tmp_path, env=env).returncode == 0
    before = len(sandbox.calls())
    one_line_error(cli("run", cwd=tmp_path, env=env), 7, "preflight found")
    assert len(sandbox.calls()) == before
    status = json.loads(cli("status", "--json", cwd=tmp_path).stdout)
    assert status["phase"] == "preflight" and status["run_holder"] is None
    assert "preflight found" in status["last_error"]


def test_second_concurrent_run_is_refused(tmp_path: Path) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / '.migrator' / 'state.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from migrator.store import Store; s = Store.open(sys.argv[1]); "
         "s.acquire_run_lease(s.require_migration('m1'), 3600); print('READY', flush=True); sys.stdin.read()",
         url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "READY"
        proc = cli("run", cwd=tmp_path)
        one_line_error(proc, 5, f"pid {holder.pid}")
        assert json.loads(cli("status", "--json", cwd=tmp_path).stdout)["phase"] == "created"
    finally:
        holder.kill()
        holder.wait()


def test_graph_bad_input(tmp_path: Path) -> None:
    one_line_error(cli("graph", "--strategy", "teleport", cwd=tmp_path), 2, "unknown strategy")
    one_line_error(cli("graph", "--format", "png", cwd=tmp_path), 2, "unknown graph format")


def test_traceback_only_on_request(tmp_path: Path) -> None:
    proc = cli("--traceback", "status", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_missing_aws_credentials_is_a_config_error(tmp_path: Path) -> None:
    good_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", SRC_PW="x")
    assert subprocess.run([sys.executable, "-m", "migrator", "init", "migrator.toml"], cwd=tmp_path, env=env,
                          capture_output=True, timeout=120).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "migrator", "inventory"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    one_line_error(proc, 2, "no usable AWS credentials", "AWS_PROFILE")


#: What only a run needs: `status`, `history` and `--help` answer without importing any of it
#: (issue 12 §6: a quick CLI on a store of thousands of tables; issue 21 §4: the state-machine
#: library, the engine's runner and table walker, the notifier's HTTP stack too).
RUN_ONLY_MODULES = ("boto3", "botocore", "redshift_connector", "alembic", "transitions", "urllib.request",
                    "migrator.strategies.cutover", "migrator.strategies.common", "migrator.strategies.recorded",
                    "migrator.strategies.table_steps", "migrator.aws.clusters", "migrator.engine.machine",
                    "migrator.engine.runner", "migrator.engine.tables", "migrator.notify")


@pytest.mark.parametrize("argv", [["--help"], ["status"], ["status", "--json"],
                                  ["status", "--all"], ["status", "--all", "--json"], ["history", "--limit", "5"]])
def test_reading_commands_import_nothing_a_run_needs(tmp_path: Path, argv: list[str]) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    probe = ("import sys\nfrom migrator.cli import main\nsys.argv = ['migrator', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
             f"loaded = sorted(m for m in sys.modules if m in {RUN_ONLY_MODULES!r} or m.split('.')[0] in "
             f"{RUN_ONLY_MODULES!r})\nsys.stderr.write('LOADED ' + ','.join(loaded) + ' EXIT ' + str(code))\n")
    proc = subprocess.run([sys.executable, "-c", probe, *argv], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert "EXIT 0" in proc.stderr, proc.stderr
    assert "LOADED  EXIT" in proc.stderr, proc.stderr
