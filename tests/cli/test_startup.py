"""Start-up (issue 21 §4): the CLI builds only the command it runs, and answers exactly as the
whole app does."""

from __future__ import annotations

import pytest
from typer.main import get_command, get_command_name
from typer.testing import CliRunner

from migrator import cli


def _names() -> list[str]:
    return sorted([c.name or get_command_name(c.callback.__name__) for c in cli.app.registered_commands
                   if c.callback is not None] + [str(g.name) for g in cli.app.registered_groups])


def test_every_command_is_found_alone() -> None:
    for name in _names():
        narrow = get_command(cli.app_for([name]))
        assert list(narrow.commands) == [name], name  # type: ignore[attr-defined]
    narrow = get_command(cli.app_for(["-v", "--traceback", "status"]))
    assert list(narrow.commands) == ["status"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("argv", [[], ["--help"], ["statu"], ["--install-completion"], ["-v"], ["status-all"]])
def test_no_command_or_an_unknown_one_gets_the_whole_app(argv: list[str]) -> None:
    assert cli.app_for(argv) is cli.app


@pytest.mark.parametrize("name", _names())
def test_a_command_alone_answers_as_in_the_whole_app(name: str) -> None:
    """Its help, and a mistake in its options, read the same (usage line, options, one-line error)."""
    runner = CliRunner()
    for argv in ([name, "--help"], [name, "--no-such-option"], ["--traceback", name, "--help"]):
        whole = runner.invoke(cli.app, argv, prog_name="migrator")
        alone = runner.invoke(cli.app_for(argv), argv, prog_name="migrator")
        assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), argv
