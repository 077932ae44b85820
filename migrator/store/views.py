"""Plain, detached snapshots of store rows: what the rest of the code sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from migrator.names import table_key


@dataclass(frozen=True)
class MigrationView:
    id: int
    name: str
    strategy: str
    phase: str
    version: int
    config_hash: str
    config_fingerprint: dict[str, Any]
    approvals: dict[str, Any]
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class TableView:
    id: int
    migration_id: int
    schema_name: str
    table_name: str
    size_mb: int
    source_rows: int
    state: str
    version: int
    attempt: int
    owner: str | None
    lease_expires_at: datetime | None
    staging_prefix: str | None
    manifest_url: str | None
    unload_format: str | None
    format_reason: str | None
    rows_unloaded: int | None
    bytes_unloaded: int | None
    rows_loaded: int | None
    source_checksum: str | None
    target_checksum: str | None
    last_error: str | None
    step_timings: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    ready_at: datetime | None = None

    @property
    def pair(self) -> tuple[str, str]:
        """The table's identity: (schema, table)."""
        return (self.schema_name, self.table_name)

    @property
    def qualified_name(self) -> str:
        """Reversible text of the pair (names.table_key): ``"a.b".c`` and ``a."b.c"`` differ."""
        return table_key(self.schema_name, self.table_name)

    @property
    def subject(self) -> str:
        return f"table:{self.qualified_name}"


@dataclass(frozen=True)
class EventView:
    id: int
    at: datetime
    subject: str
    from_state: str | None
    to_state: str | None
    trigger: str
    detail: dict[str, Any]
    host: str
    pid: int


@dataclass(frozen=True)
class LeaseView:
    migration_id: int
    holder: str
    host: str
    pid: int
    pid_started: str | None
    token: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class WorkerView:
    migration_id: int
    holder: str
    role: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True)
class RemoteActionView:
    action_key: str
    status: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class TableSpec:
    """One table as the inventory found it."""

    schema_name: str
    table_name: str
    size_mb: int = 0
    source_rows: int = 0


@dataclass(frozen=True)
class StateCount:
    state: str
    tables: int
    rows: int
    size_mb: int


@dataclass(frozen=True)
class PartView:
    id: int
    migration_id: int
    table_id: int
    part_no: int
    parts_total: int
    part_column: str | None
    lower_bound: str | None
    upper_bound: str | None
    est_rows: int
    est_mb: int
    state: str
    version: int
    attempt: int
    owner: str | None
    lease_expires_at: datetime | None
    staging_prefix: str | None
    manifest_url: str | None
    rows_unloaded: int | None
    bytes_unloaded: int | None
    files_unloaded: int | None
    rows_loaded: int | None
    source_checksum: str | None
    target_checksum: str | None
    last_error: str | None
    updated_at: datetime | None = None
    ready_at: datetime | None = None
    #: Not a column: set by a pick, the owner the part had before (a dead worker's, when picked in flight).
    taken_from: str | None = None

    @property
    def label(self) -> str:
        return f"{self.part_no + 1}/{self.parts_total}"


@dataclass(frozen=True)
class PartSpec:
    """A part as planned: its range (text bounds, None open) and its estimated share of the table."""

    part_no: int
    parts_total: int
    part_column: str | None
    lower_bound: str | None
    upper_bound: str | None
    est_rows: int
    est_mb: int
