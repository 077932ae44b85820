"""`migrator sandbox up/down` and `demo` as a new user meets them (issue 20)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from migrator.sandbox import commands as sandbox_commands
from migrator.sandbox import daemon


@pytest.mark.parametrize("args", [["demo"], ["sandbox", "up", "--dir", "{dir}"]])
def test_without_the_sandbox_extra_the_user_is_told_to_install_it(args: list[str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *rest: Any) -> Any:
        return None if name == "moto" else real(name, *rest)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(app, [a.replace("{dir}", str(tmp_path / "sb")) for a in args])
    assert result.exit_code == 2, result.output
    assert "pip install 'migrator[sandbox]'" in result.output and "No module named" not in result.output
    assert not (tmp_path / "sb").exists()


def test_up_says_what_to_run_next_and_down_leaves_no_data(tmp_path: Path) -> None:
    directory = tmp_path / "sb"
    up = sandbox_commands.up(directory, tables=1, rows=10)
    try:
        assert f'eval "$(migrator sandbox env --dir {directory})"' in up.message
        assert str(directory.resolve() / "snapshot-restore.toml") in up.configs
        assert (directory / sandbox_commands.DATA_DIRECTORY).is_dir()
    finally:
        sandbox_commands.down(directory)
    assert daemon.running_pid(directory.resolve()) is None
    assert not (directory / sandbox_commands.DATA_DIRECTORY).exists()
