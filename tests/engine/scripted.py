"""A scripted stand-in for the data plane: phase actions that move tables through
the real table machine without touching AWS. It replaces only our own phase
actions (the part other issues implement), never the engine or the store."""

from __future__ import annotations

from migrator.engine.phases import BUILTIN_ACTIONS
from migrator.engine.registry import Registry
from migrator.engine.context import PhaseContext
from migrator.engine.runner import default_registry
from migrator.store import TableSpec

TABLES = [TableSpec("public", f"t{i}", size_mb=10 * i, source_rows=100 * i) for i in range(1, 6)]


def scripted_registry(fail_table: str | None = None) -> Registry:
    reg = Registry()
    simple = {"preflight": "preflight_passed", "provision_target": "target_ready",
              "replay_objects": "objects_replayed", "rehearse": "rehearsed", "await_write_freeze": "writes_frozen",
              "catch_up": "caught_up",
              "cutover": "cut_over", "decommission": "decommissioned"}
    for action, trigger in simple.items():
        reg.actions[action] = (lambda t: (lambda ctx: t))(trigger)
    # The decommission gate's stray-write watch (strategies/stray_writes.py) reads AWS: here only its gate.
    reg.actions["watch_stray_writes"] = BUILTIN_ACTIONS.actions["await_approval"]

    @reg.action("inventory")
    def inventory(ctx: PhaseContext) -> str:
        ctx.store.add_tables(ctx.migration, TABLES, ctx.table_definition.initial)
        return "inventoried"

    @reg.action("copy_tables")
    def copy_tables(ctx: PhaseContext) -> str:
        for task in ctx.store.list_tables(ctx.migration, order_by_size=True):
            flow = ctx.table_flow(task)
            if flow.state == "pending":
                flow.fire("start_unload")
                if task.qualified_name == fail_table:
                    flow.fire("fail", error="injected failure")
                    continue
                flow.fire("complete_unload", fields={"manifest_url": f"s3://b/{task.table_name}/manifest"})
            if flow.state == "unloaded":
                flow.fire("start_load")
                flow.fire("complete_load", fields={"rows_loaded": task.source_rows})
            if flow.state == "loaded":
                flow.fire("start_validation")
                flow.fire("complete_validation", fields={"source_checksum": "c", "target_checksum": "c"})
        return "tables_copied"  # the engine counts, from the store, whether every table is done

    @reg.action("validate")
    def validate(ctx: PhaseContext) -> str:
        return "validated"

    return default_registry().extended(reg)
