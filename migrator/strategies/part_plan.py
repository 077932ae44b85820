"""Pieces of table parts shared by the table steps and the cutover window: a stored part as a
range to read, and sending back the parts whose rows or checksum differ."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrator.engine import parts as parts_engine
from migrator.errors import RemoteError
from migrator.store import PartView, TableView
from migrator.warehouse.inventory import TableInfo
from migrator.warehouse.parts import PartRange

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

#: Set in a table's step_timings by the cutover window when it compared the table part by part
#: and sent the differing parts back itself (the table's re-copy then compares nothing again).
PARTS_CHECKED = "parts_checked"


def part_range(part: PartView, info: TableInfo) -> PartRange:
    column = next((c for c in info.columns if c.name == part.part_column), None)
    if column is None:
        raise RemoteError(f"{info.ref}: part column {part.part_column!r} is no longer in the table",
                          hint="the table's shape changed during the copy; copy it whole (tables.part_size = \"0\")")
    return PartRange(part.part_no, part.parts_total, column.name, column.type, part.lower_bound,
                     part.upper_bound, part.est_rows)


def done_ranges(parts: list[PartView], info: TableInfo) -> list[PartRange]:
    """Ranges of the parts done; a file group (no part column) has none: its table is compared whole."""
    done = set(parts_engine.done_states())
    return [part_range(p, info) for p in parts if p.state in done and p.part_column is not None]


def recopy_differing(ctx: "PhaseContext", task: TableView, differing: list[int], reason: str) -> int:
    """Send the parts numbered in ``differing`` back to be copied (their `recopy` move), recorded."""
    if -1 in differing:
        raise RemoteError(f"{task.qualified_name}: rows outside every part's range",
                          hint="copy the table whole (tables.part_size = \"0\") and re-run")
    wanted = set(differing)
    moved = parts_engine.recopy_parts(ctx, task, lambda p: p.part_no in wanted, reason)
    ctx.store.add_event(ctx.migration, task.subject, "parts_rechecked",
                        {"recopied": moved, "recopied_parts": sorted(wanted)}, state=ctx.migration.phase)
    return moved
