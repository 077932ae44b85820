"""Issue 24, arguments and the process's surroundings: out-of-range and wrong-typed options, the
sandbox commands' arguments, approval flags for gates a strategy lacks, include patterns that
select nothing, output to a full disk, an ASCII-only terminal, and the one catch-all at the top
of the CLI (exit 1, "please report", traceback only with --traceback)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.cli.test_cli import good_config
from tests.harness import cli, migrator_command, one_line_error, write_config


def _store_digest(tmp_path: Path) -> bytes | None:
    path = tmp_path / ".migrator" / "state.db"
    return path.read_bytes() if path.exists() else None


@pytest.mark.parametrize("argv, fragments", [
    (["history", "--limit", "-5"], ["--limit"]),
    (["history", "--limit", "0"], ["--limit"]),
    (["history", "--limit", "abc"], ["--limit"]),
    (["history", "--limit", "9" * 40], ["--limit"]),
    (["status", "--no-such-option"], ["--no-such-option"]),
    (["no-such-command"], ["no-such-command"]),
    (["init"], ["config"]),
    (["sandbox", "seed", "--tables", "-5"], ["--tables"]),
    (["sandbox", "seed", "--rows", "0"], ["--rows"]),
    (["sandbox", "up", "--tables", "100000"], ["--tables"]),
    (["sandbox", "fault", "latency", "--param", "seconds=abc"], ["seconds"]),
    (["sandbox", "fault", "latency", "--param", "seconds=inf"], ["seconds"]),
    (["sandbox", "fault", "latency", "--param", "seconds=-1"], ["seconds"]),
    (["sandbox", "fault", "latency", "--param", "=1"], ["key=value"]),
    (["sandbox", "fault", "latency", "--nth", "0"], ["--nth"]),
    (["sandbox", "fault", "latency", "--times", "-2"], ["--times"]),
    (["demo", "--tables", "-1"], ["--tables"]),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, argv: list[str], fragments: list[str]) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    before = _store_digest(tmp_path)
    proc = cli(*argv, "--dir", str(tmp_path / "sb"), cwd=tmp_path) if argv[0] == "sandbox" else \
        cli(*argv, cwd=tmp_path)
    one_line_error(proc, 2, *fragments)
    assert "--help" in proc.stderr
    assert _store_digest(tmp_path) == before
    assert not (tmp_path / "sb").exists()


@pytest.mark.parametrize("command", [["up"], ["seed"], ["status"], ["down"], ["fault", "latency"]])
def test_sandbox_dir_that_is_a_file(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "afile").write_text("x")
    proc = cli("sandbox", *command, "--dir", str(tmp_path / "afile"), cwd=tmp_path)
    one_line_error(proc, 2, "not a directory")
    assert (tmp_path / "afile").read_text() == "x"


def test_approve_modify_on_a_strategy_without_that_gate_is_refused(tmp_path: Path) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    before = _store_digest(tmp_path)
    proc = cli("run", "--approve-modify", "-q", cwd=tmp_path, env={"SRC_PW": "x"})
    one_line_error(proc, 2, "--approve-modify", "unload-copy strategy has no modify gate")
    assert _store_digest(tmp_path) == before


def test_approve_cutover_on_modify_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path / "migrator.toml", migration={"strategy": "modify", "store": "sqlite:///.migrator/s.db"},
                 target={"cluster_id": ""}, staging=None)
    proc = cli("run", "--approve-cutover", "-q", cwd=tmp_path, env={"SRC_PW": "x"})
    one_line_error(proc, 2, "--approve-cutover", "no cutover gate")


def test_plan_refuses_include_patterns_that_select_nothing(sandbox: SandboxClient, tmp_path: Path) -> None:
    from tests.ops.test_operator_cli import sandbox_config

    config = sandbox_config(sandbox, "unload-copy", tmp_path)
    text = config.read_text()
    (tmp_path / "none.toml").write_text(text + '\n[tables]\ninclude = ["nosuchschema.*"]\n')
    before = len(sandbox.calls())
    proc = cli("plan", "-c", "none.toml", cwd=tmp_path, env=sandbox.env())
    one_line_error(proc, 7, "no source table matches", "nosuchschema.*")
    (tmp_path / "some.toml").write_text(text + '\n[tables]\ninclude = ["*.*", "typo_schema.*"]\n')
    proc = cli("plan", "-c", "some.toml", "--json", cwd=tmp_path, env=sandbox.env())
    assert proc.returncode == 0, proc.stderr
    assert "[tables] include pattern 'typo_schema.*' matches no table" in json.loads(proc.stdout)["warnings"]
    assert len(sandbox.calls()) == before and not (tmp_path / ".migrator").exists()


# -- the process's surroundings (a real process: a file descriptor and an encoding of its own) -----

def _run(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SRC_PW": "x", **kwargs.pop("env", {})}  # type: ignore[dict-item]
    return subprocess.run(migrator_command(*args), cwd=cwd, capture_output=True, text=True, env=env, timeout=120,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("argv", [["status", "--json"], ["status"], ["history", "--json"], ["--help"],
                                  ["graph"]])
def test_output_to_a_full_disk_is_one_line_exit_13(tmp_path: Path, argv: list[str]) -> None:
    good_config(tmp_path)
    assert cli("init", "migrator.toml", cwd=tmp_path).returncode == 0
    with open("/dev/full", "w") as full:
        proc = subprocess.run(migrator_command(*argv), cwd=tmp_path, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert proc.returncode == 13, proc.stderr
    assert proc.stderr.strip() == "error: cannot write the output: No space left on device (check the file or " \
                                  "pipe it goes to)"


def test_ascii_only_terminal_and_a_non_ascii_config_path(tmp_path: Path) -> None:
    good_config(tmp_path)
    (tmp_path / "migrator.toml").rename(tmp_path / "mïgrätör.toml")
    env = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    missing = _run(["init", "nöpe.toml"], tmp_path, env=env)
    one_line_error(missing, 2, "n\\xf6pe.toml not found")
    created = _run(["init", "mïgrätör.toml"], tmp_path, env=env)
    assert created.returncode == 0 and "Traceback" not in created.stderr, created.stderr
    status = _run(["status", "-c", "mïgrätör.toml"], tmp_path, env=env)
    assert status.returncode == 0 and "m\\xefgr\\xe4t\\xf6r.toml" in status.stdout, status.stderr


# -- the one catch-all at the top ----------------------------------------------------------------

def test_an_unexpected_error_is_one_line_asking_for_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself (a stand-in bug: `graph` made to raise), so its line and code are pinned."""
    import migrator.commands

    def broken(*_: object) -> None:
        raise ValueError("boom at http://admin:S3cretPW@example.com/x")

    monkeypatch.setattr(migrator.commands, "graph", broken)
    proc = cli("graph", cwd=tmp_path)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: internal error (ValueError: boom at http://***@example.com/x); this is a bug: "
                           "please report it")
    assert "--traceback" in line and "S3cretPW" not in proc.stderr
    traced = cli("--traceback", "graph", cwd=tmp_path)
    assert traced.returncode == 1 and "Traceback" in traced.stderr and "please report" in traced.stderr


def test_a_userinfo_url_in_any_error_line_is_masked(tmp_path: Path) -> None:
    good_config(tmp_path, migration={"store": "postgresql+psycopg://admin:S3cretPW@127.0.0.1:1/db"})
    for argv in (["init", "migrator.toml"], ["status"], ["history"], ["db", "upgrade"], ["plan"]):
        proc = cli(*argv, cwd=tmp_path)
        assert proc.returncode in (3, 9, 10, 2), (argv, proc.stderr)
        assert "S3cretPW" not in proc.stderr + proc.stdout, argv
        assert "Traceback" not in proc.stderr
