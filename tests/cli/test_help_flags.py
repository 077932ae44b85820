"""Flags take no value, so `--help` shows no `<bool>` placeholder for them (issue 20)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from migrator.cli import app


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix + (c.name or c.callback.__name__.replace("_", "-"),) for c in group.registered_commands
             if c.callback is not None]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name
        found += _commands(sub.typer_instance, prefix + (sub.name,))
    return found


def test_no_flag_shows_a_bool_placeholder() -> None:
    commands = _commands(app)
    assert ("run",) in commands and ("sandbox", "up") in commands
    for command in [()] + commands:
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (command, result.output)
        assert "<bool>" not in result.output, command
    run_help = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--approve-cutover" in run_help and "<path>" in run_help  # valued options keep their type
