"""A wheel built from this checkout, installed into a fresh virtualenv, works from an
unrelated directory: states/ and migrations_db/ travel inside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import CONFIG_TOML

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_in_fresh_virtualenv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    wheel = next(dist.glob("migrator-*.whl"))
    env_dir = tmp_path / "venv"
    # Nothing of this checkout on the fresh environment's path (a PYTHONPATH pointing here would
    # hide whether the wheel carries everything).
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=600, env=clean)
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "migrator.toml").write_text(CONFIG_TOML.format(store="sqlite:///state/store.db"))
    exe = str(env_dir / "bin" / "migrator")

    def run(*args: str) -> str:
        proc = subprocess.run([exe, *args], cwd=work, capture_output=True, text=True, timeout=120, env=clean)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "stateDiagram-v2" in run("graph", "--strategy", "snapshot-restore")
    assert re.search(r"schema empty -> \d{4}_\w+", run("db", "upgrade"))  # upgraded to the head revision
    assert "created" in run("init", "migrator.toml")
    located = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                              "import migrator.paths as p; print(p.states_dir())"],
                             cwd=work, capture_output=True, text=True, check=True, env=clean).stdout
    assert str(env_dir) in located  # the installed copy, not this checkout
