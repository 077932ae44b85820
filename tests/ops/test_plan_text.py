"""`migrator plan` as a person reads it (issue 20): each table once, and no claim that the
snapshot-restore route keeps the source writable."""

from __future__ import annotations

from rich.console import Console

from migrator import routes
from migrator.results import PlanResult


def test_tables_whose_names_hold_dots_are_listed_as_two_tables() -> None:
    plan = PlanResult("m", "unload-copy", "unload-copy", "why", [], [], [
        {"schema": "a.b", "table": "c", "size_mb": 2, "rows": 10},
        {"schema": "a", "table": "b.c", "size_mb": 1, "rows": 5}], 3, None, "basis", "window")
    console = Console(width=200, record=True)
    console.print(plan.render())
    text = console.export_text()
    assert '"a.b".c' in text and 'a."b.c"' in text
    assert text.count("a.b.c") == 0


def test_snapshot_restore_is_not_said_to_keep_the_source_writable() -> None:
    route = routes.route("snapshot-restore")
    said = " ".join([route.freeze_window, *(s.reason for s in route.suggestions)])
    assert "writable" not in said and "writes to the source stop from the snapshot" in said
