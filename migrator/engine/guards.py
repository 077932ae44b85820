"""Guards shared by every strategy. Guards are pure: they read, never write."""

from __future__ import annotations

from migrator.engine.registry import GuardContext, Registry

BUILTIN = Registry()


@BUILTIN.guard("manifest_recorded")
def manifest_recorded(ctx: GuardContext) -> bool:
    fields = ctx.facts.get("fields", {})
    return bool(fields.get("manifest_url") or getattr(ctx.subject, "manifest_url", None))


@BUILTIN.guard("rows_recorded")
def rows_recorded(ctx: GuardContext) -> bool:
    return ctx.facts.get("fields", {}).get("rows_loaded") is not None


@BUILTIN.guard("checksums_match")
def checksums_match(ctx: GuardContext) -> bool:
    fields = ctx.facts.get("fields", {})
    source = fields.get("source_checksum", getattr(ctx.subject, "source_checksum", None))
    target = fields.get("target_checksum", getattr(ctx.subject, "target_checksum", None))
    return source is not None and source == target


@BUILTIN.guard("parts_done")
def parts_done(ctx: GuardContext) -> bool:
    """Set by the table worker from the store: every part of the table is in a done state."""
    return ctx.facts.get("parts_done") is True


@BUILTIN.guard("attempts_left")
def attempts_left(ctx: GuardContext) -> bool:
    limit = ctx.facts.get("max_attempts")
    if limit is None and ctx.settings is not None:
        limit = ctx.settings.tables.max_attempts
    return limit is None or ctx.subject.attempt < int(limit)


@BUILTIN.guard("load_committed")
def load_committed(ctx: GuardContext) -> bool:
    """Set by the reconciler from the target's load marker (the data plane decides)."""
    return bool(ctx.facts.get("load_committed"))


@BUILTIN.guard("all_tables_done")
def all_tables_done(ctx: GuardContext) -> bool:
    """The runner counts, from the store and the table machine's `done` tag, the tables not done."""
    return ctx.facts.get("tables_not_done") == 0


@BUILTIN.guard("gate_approved")
def gate_approved(ctx: GuardContext) -> bool:
    """An approval of this gate, given in the phase the migration is in now (older ones do not count)."""
    gate = ctx.facts.get("gate")
    approval = (ctx.subject.approvals or {}).get(gate) if gate else None
    return isinstance(approval, dict) and approval.get("phase") == ctx.subject.phase
