"""Result objects: what each command returns. Two renderings each: ``asdict()``
for ``--json`` and ``render()`` for people."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from migrator.names import table_key


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Result:
    def asdict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload, no-any-return]

    def render(self) -> RenderableType:
        raise NotImplementedError

    def exit_code(self) -> int:
        return 0


def _add_row(grid: Table, *cells: RenderableType) -> None:
    """A row whose text is shown as itself: names from the catalog (a table called `[/]` or
    `[link=x]y[/link]`), errors and details are never read as rich markup."""
    grid.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


@dataclass
class InitResult(Result):
    migration: str
    strategy: str
    store: str
    phase: str
    created: bool
    schema_revision: str

    def render(self) -> RenderableType:
        verb = "created" if self.created else "already initialised"
        return Text(f"migration {self.migration!r} ({self.strategy}) {verb}; phase {self.phase}; "
                    f"store {self.store} at schema {self.schema_revision}")


@dataclass
class DbResult(Result):
    store: str
    from_revision: str | None
    to_revision: str | None
    #: The copy written before a downgrade dropped tables (SQLite stores).
    backup: str | None = None

    def render(self) -> RenderableType:
        if self.from_revision == self.to_revision:
            return Text(f"store {self.store} already at schema {self.to_revision}")
        saved = f" (copy of the store before: {self.backup})" if self.backup else ""
        return Text(f"store {self.store}: schema {self.from_revision or 'empty'} -> {self.to_revision}{saved}")


@dataclass
class TableRow:
    table: str
    state: str
    attempt: int
    source_rows: int
    rows_loaded: int | None
    size_mb: int
    owner: str | None
    last_error: str | None
    #: An in-run retry scheduled after a transient failure: attempt, wait and when.
    retry: str | None = None
    #: A table split into parts: how many, and how many are done (0/0: copied whole).
    parts_total: int = 0
    parts_done: int = 0
    #: The table's schema and name as stored (``table`` is the display text, names.table_key).
    schema: str = ""
    name: str = ""


@dataclass
class StatusResult(Result):
    migration: str
    strategy: str
    phase: str
    phase_tags: list[str]
    updated_at: datetime
    finished_at: datetime | None
    last_error: str | None
    run_holder: str | None
    run_heartbeat_at: datetime | None
    tables_total: int
    tables_by_state: dict[str, int]
    rows_total: int
    rows_done: int
    approvals: list[str]
    next_step: str
    tables: list[TableRow] = field(default_factory=list)
    #: Tables split into parts: {table: {"parts_total": n, "parts_done": m}} (with or without --tables).
    parts: dict[str, dict[str, int]] = field(default_factory=dict)
    bytes_done: int = 0
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    #: The newest progress report of a long remote operation (e.g. DescribeResize figures).
    progress: dict[str, Any] = field(default_factory=dict)
    progress_at: datetime | None = None
    #: Said first, before anything else: the production name may have no cluster, and what to run.
    alert: str | None = None
    #: The run holding the lease is gone (its process ended, or its heartbeat expired): why.
    run_died: str | None = None
    #: Said before everything else: writes the old source took after the cutover, not accepted.
    stray_writes: list[str] = field(default_factory=list)
    #: The write downtime: what it will be made of before the window, what it was once the name answered.
    write_downtime: str | None = None
    #: After the cutover: the clients of the old cluster that have not connected to the new one yet.
    clients_not_moved: str | None = None

    def render(self) -> RenderableType:
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        _add_row(head, "migration", f"{self.migration} ({self.strategy})")
        _add_row(head, "phase", f"{self.phase}" + (f"  [{', '.join(self.phase_tags)}]" if self.phase_tags else ""))
        _add_row(head, "updated", self.updated_at.isoformat(timespec="seconds"))
        if self.run_holder:
            _add_row(head, "running", f"{self.run_holder} (heartbeat {self.run_heartbeat_at:%H:%M:%S})")
        elif self.run_died:
            _add_row(head, "running", Text(f"no run active: the last run died ({self.run_died})", style="red"))
        else:
            _add_row(head, "running", "no run active")
        if self.tables_total:
            states = ", ".join(f"{n} {s}" for s, n in sorted(self.tables_by_state.items()))
            pct = 100.0 * self.rows_done / self.rows_total if self.rows_total else 100.0
            _add_row(head, "tables", f"{self.tables_total} ({states})")
            _add_row(head, "rows", f"{self.rows_done:,} of {self.rows_total:,} validated ({pct:.1f}%)")
        if self.rows_per_second:
            eta = f", about {_duration(self.eta_seconds)} left" if self.eta_seconds is not None else ""
            _add_row(head, "throughput", f"{self.rows_per_second:,.0f} rows/s, {self.bytes_done / 1e6:,.1f} MB staged"
                                       f"{eta}")
        if self.progress:
            figures = ", ".join(f"{k}={v}" for k, v in self.progress.items())
            when = f" (at {self.progress_at:%H:%M:%S})" if self.progress_at else ""
            _add_row(head, "progress", figures + when)
        if self.write_downtime:
            _add_row(head, "write downtime", self.write_downtime)
        if self.clients_not_moved:
            _add_row(head, "clients", self.clients_not_moved)
        if self.approvals:
            _add_row(head, "approved", ", ".join(self.approvals))
        if self.last_error:
            _add_row(head, "last error", Text(self.last_error, style="red"))
        _add_row(head, "next", self.next_step)
        parts: list[RenderableType] = [Text(line, style="bold red", no_wrap=True, overflow="ignore")
                                       for line in self.stray_writes]
        if self.alert:
            parts.append(Text(self.alert, style="bold red", no_wrap=True, overflow="ignore"))
        parts.append(head)
        if self.tables:
            grid = Table(show_edge=False, header_style="bold")
            for col in ("table", "state", "attempt", "rows", "loaded", "MB", "parts", "error", "retry"):
                grid.add_column(col, justify="right" if col in ("attempt", "rows", "loaded", "MB", "parts")
                                else "left")
            for row in self.tables:
                _add_row(grid, row.table, row.state, str(row.attempt), f"{row.source_rows:,}",
                             "" if row.rows_loaded is None else f"{row.rows_loaded:,}", str(row.size_mb),
                             f"{row.parts_done}/{row.parts_total}" if row.parts_total else "",
                             row.last_error or "", row.retry or "")
            parts.append(grid)
        return Group(*parts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


@dataclass
class EventRow:
    at: datetime
    subject: str
    trigger: str
    from_state: str | None
    to_state: str | None
    detail: dict[str, Any]
    host: str
    pid: int


@dataclass
class HistoryResult(Result):
    migration: str
    events: list[EventRow]

    def render(self) -> RenderableType:
        grid = Table(show_edge=False, header_style="bold", title=Text(f"history of {self.migration}"))
        for col in ("time", "subject", "trigger", "from", "to", "by", "detail"):
            grid.add_column(col)
        for e in self.events:
            detail = ", ".join(f"{k}={v}" for k, v in e.detail.items())
            _add_row(grid, e.at.isoformat(timespec="seconds"), e.subject, e.trigger, e.from_state or "",
                         e.to_state or "", f"{e.host}:{e.pid}", detail[:120])
        return grid


@dataclass
class GraphResult(Result):
    strategy: str
    format: str
    text: str

    def render(self) -> RenderableType:
        return Text(self.text)


@dataclass
class RunResult(Result):
    migration: str
    strategy: str
    start_phase: str
    end_phase: str
    final: bool
    moves: list[str]
    recovered_tables: list[str]
    took_over_from: str | None
    note: str | None = None

    def render(self) -> RenderableType:
        lines = [f"migration {self.migration!r}: {self.start_phase} -> {self.end_phase}"
                 + (" (done)" if self.final else "")]
        if self.note:
            lines.append(self.note)
        if self.took_over_from:
            lines.append(f"took over from dead run {self.took_over_from}")
        if self.recovered_tables:
            lines.append(f"handed back {len(self.recovered_tables)} in-flight table(s): "
                         + ", ".join(self.recovered_tables[:10]))
        lines.extend(f"  {m}" for m in self.moves)
        return Text("\n".join(lines))


def print_result(result: Result, *, as_json: bool, console: Console | None = None) -> None:
    import json

    if console is None:
        console = Console()
        if not console.is_terminal:
            # Piped or captured: keep whole lines rather than squeezing tables into 80 columns.
            console = Console(width=200)
    if as_json:
        print(json.dumps(result.asdict(), indent=2, default=str))
    else:
        console.print(result.render())


@dataclass
class SandboxResult(Result):
    directory: str
    running: bool
    endpoint_url: str | None = None
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)
    message: str = ""
    brief: bool = False

    def render(self) -> RenderableType:
        if not self.running or self.brief:
            return Text(self.message or f"no sandbox running in {self.directory}")
        lines = [self.message or f"sandbox running in {self.directory}", f"AWS endpoint: {self.endpoint_url}"]
        for cid, c in self.clusters.items():
            lines.append(f"cluster {cid}: PGPASSWORD=... psql 'host={c['host']} port={c['port']} "
                         f"dbname={c['database']} user={c['user']} sslmode=disable'")
        lines += [f"config: {path}" for path in self.configs]
        lines.append(f"passwords and AWS settings: {self.directory}/sandbox.json")
        return Text("\n".join(lines))

    def asdict(self) -> dict[str, Any]:
        data = super().asdict()
        for cluster in data["clusters"].values():
            cluster.pop("password", None)  # never print secrets; sandbox.json (mode 0600) has them
        return data


@dataclass
class RollbackResult(Result):
    migration: str
    phase: str
    done: dict[str, Any]

    def render(self) -> RenderableType:
        steps = ", ".join(f"{k}={v}" for k, v in self.done.items() if k != "phase") or "nothing to undo remotely"
        return Text(f"migration {self.migration!r} rolled back ({steps}); phase {self.phase}")


@dataclass
class InventoryResult(Result):
    cluster: str
    tables: list[dict[str, Any]]
    #: Over what time and from which logs scans, last writes and "unused" were read.
    usage_window: str = ""
    usage_days: int = 0
    usage_source: str = ""

    def render(self) -> RenderableType:
        title = f"user tables on {self.cluster}, largest first" + (f"; {self.usage_window}" if self.usage_window else "")
        grid = Table(show_edge=False, header_style="bold", title=Text(title))
        for col in ("table", "MB", "rows", "dist", "sort", "identity", "scans", "last write", "unused"):
            grid.add_column(col, justify="right" if col in ("MB", "rows", "scans") else "left")
        for t in self.tables:
            sort = f"{(t['sortkey_kind'] or '').lower()} ({', '.join(t['sortkeys'])})" if t["sortkeys"] else ""
            dist = t["diststyle"] + (f"({t['distkey']})" if t["distkey"] else "")
            _add_row(grid, table_key(t['schema'], t['table']), str(t["size_mb"]), f"{t['rows']:,}", dist, sort,
                         ", ".join(t["identity_columns"]), str(t["scans"]), (t["last_write"] or "")[:19],
                         "yes" if t["unused"] else "")
        return grid


@dataclass
class ClientsResult(Result):
    """Who connects to the cluster (`migrator clients`); after the cutover, who has moved."""

    cluster: str
    window_start: str
    window_end: str
    window: str
    clients: list[dict[str, Any]]
    renamed_at: str | None = None
    old_cluster: str | None = None
    not_moved: int | None = None
    notes: list[str] = field(default_factory=list)

    def render(self) -> RenderableType:
        after = self.renamed_at is not None
        title = (f"clients of {self.cluster} ({self.window})" if not after else
                 f"clients of {self.old_cluster} (renamed away at {self.renamed_at}): {self.not_moved} not moved")
        grid = Table(show_edge=False, header_style="bold", title=Text(title))
        cols = ["user", "host", "application", "first seen", "last seen", "sessions", "statements", "writes"]
        if after:
            cols += ["moved", "still on old"]
        for col in cols:
            grid.add_column(col, justify="right" if col in ("sessions", "statements", "writes") else "left")
        for c in self.clients:
            cells = [c.get("user") or "", c.get("host") or "", c.get("application") or "",
                     (c.get("first_seen") or "")[:19], (c.get("last_seen") or "")[:19], str(c.get("sessions", 0)),
                     str(c.get("statements", 0)), str(c.get("writes", 0))]
            if after:
                cells += ["yes" if c.get("moved") else "NO", "YES" if c.get("still_on_old") else "no"]
            _add_row(grid, *cells)
        if not self.notes:
            return grid
        return Group(grid, *(Text(n) for n in self.notes))


@dataclass
class ReportResult(Result):
    migration: str
    format: str
    written_to: str | None
    summary: dict[str, Any]
    text: str | None = None

    def render(self) -> RenderableType:
        if self.text is not None:
            return Text(self.text)
        return Text(f"evidence for migration {self.migration!r} written to {self.written_to} ({self.format}): "
                    + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.summary.items()))

    def asdict(self) -> dict[str, Any]:
        if self.text is not None and self.format == "json":
            import json

            return json.loads(self.text)  # type: ignore[no-any-return]
        return super().asdict()


@dataclass
class IamPolicyResult(Result):
    principal: str
    policy: dict[str, Any]
    trust_policy: dict[str, Any] | None = None

    def render(self) -> RenderableType:
        import json

        return Text(json.dumps(self.policy, indent=2))

    def asdict(self) -> dict[str, Any]:
        return {"principal": self.principal, "policy": self.policy, "trust_policy": self.trust_policy}


@dataclass
class SandboxEnvResult(Result):
    directory: str
    variables: dict[str, str]

    def render(self) -> RenderableType:
        import shlex

        # Sandbox-only credentials, printed on request so `eval "$(migrator sandbox env)"` works.
        return Text("\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.variables.items()))


@dataclass
class PlanResult(Result):
    migration: str
    strategy: str
    suggested_strategy: str
    why: str
    requests: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    staging_mb: int
    estimate_seconds: float | None
    estimate_basis: str
    freeze_window: str
    warnings: list[str] = field(default_factory=list)
    #: When to start the copy and when to cut over, with the figures they rest on (planning.suggest_windows).
    windows: dict[str, Any] = field(default_factory=dict)
    #: Who connects to the source (`migrator clients`), or why that could not be read.
    clients: list[dict[str, Any]] | None = None
    clients_note: str | None = None

    def render(self) -> RenderableType:
        import json

        head = Text()
        head.append(f"plan for migration {self.migration!r}: strategy {self.strategy}", style="bold")
        head.append(f"\nsuggested route: {self.suggested_strategy} ({self.why})")
        eta = _duration(self.estimate_seconds) if self.estimate_seconds is not None else "unknown"
        head.append(f"\nestimated duration: {eta} ({self.estimate_basis})")
        head.append(f"\nwrite freeze: {self.freeze_window}")
        if self.staging_mb:
            head.append(f"\nstaging volume: about {self.staging_mb:,} MB (compressed files are smaller)")
        for key, label in (("copy_start", "start the copy"), ("cutover", "cut over")):
            w = (self.windows or {}).get(key)
            if w:
                f = w["figures"]
                head.append(f"\n{label}: {w['starts']} for {w['hours']} h (next {w['next_start']}; CPU "
                            f"{f['cpu_percent_avg']:g} %, {f['connections_avg']:g} connections, WriteIOPS up to "
                            f"{f['write_iops_max']:g}; {w['basis']})")
        if self.clients is not None:
            writers = sum(1 for c in self.clients if c.get("writes"))
            head.append(f"\nclients: {len(self.clients)} connect to the source ({writers} write); "
                        "`migrator clients` lists them")
        elif self.clients_note:
            head.append(f"\nclients: {self.clients_note}")
        requests = Table(title="AWS requests it will send (secrets left out)", show_edge=False, header_style="bold")
        for col in ("when", "API", "parameters"):
            requests.add_column(col)
        for r in self.requests:
            requests.add_row(Text(r["when"]), Text(r["api"]), Text(json.dumps(r["params"], default=str)))
        clusters = Table(title="new cluster beside the source", show_edge=False, header_style="bold")
        for col in ("attribute", "source", "new"):
            clusters.add_column(col)
        for c in self.clusters:
            clusters.add_row(Text(c["attribute"]), Text(str(c["source"])), Text(str(c["new"])))
        parts: list[RenderableType] = [head, requests, clusters]
        if self.tables:
            grid = Table(title=f"{len(self.tables)} tables, largest first", show_edge=False, header_style="bold")
            for col in ("table", "MB", "rows"):
                grid.add_column(col, justify="left" if col == "table" else "right")
            for t in self.tables:
                # One text per table (names.table_key): `"a.b".c` and `a."b.c"` stay two tables.
                grid.add_row(Text(table_key(t["schema"], t["table"])), str(t["size_mb"]), f"{t['rows']:,}")
            parts.append(grid)
        for warning in self.warnings:
            parts.append(Text(f"warning: {warning}", style="yellow"))
        return Group(*parts)


@dataclass
class ProbeResult(Result):
    """`migrator probe`: every statement shape tried on the source (strategies.probe.ProbeReport)."""

    migration: str
    cluster: str
    route: str
    ok: bool
    catalog: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    notes: list[str]
    failures: list[str]

    def render(self) -> RenderableType:
        verdict = "every statement shape worked" if self.ok else f"{len(self.failures)} statement shape(s) failed"
        head = Text(f"probe of source {self.cluster} for migration {self.migration!r} ({self.route}): {verdict}",
                    style="bold" if self.ok else "bold red")
        catalog = Table(title="catalog queries", show_edge=False, header_style="bold")
        for col in ("query", "used for", "result"):
            catalog.add_column(col)
        for c in self.catalog:
            _add_row(catalog, c["name"], c["used_for"], ("ok" + (f" ({c['detail']})" if c["detail"] else ""))
                     if c["ok"] else Text(f"FAILED: {c['detail']}", style="red"))
        parts: list[RenderableType] = [head, catalog]
        if self.groups:
            grid = Table(title="one sampled row per distinct set of column types", show_edge=False,
                         header_style="bold")
            for col in ("sample table", "tables", "column types", "format", "rows", "result"):
                grid.add_column(col, justify="right" if col in ("tables", "rows") else "left")
            for g in self.groups:
                problems = ([f"{g['failed_shape']} FAILED: {g['detail']}"] if g["failed_shape"] else []) \
                    + list(g["cleanup_problems"])
                result: str | Text = "ok: " + " → ".join(g["passed"]) if g["ok"] else Text("; ".join(problems),
                                                                                           style="red")
                if g.get("attempts", 1) > 1:
                    result = Text.assemble(result, f" (attempt {g['attempts']}; retried after: "
                                                   f"{'; '.join(g['retried_after'])})")
                _add_row(grid, g["table"], str(g["tables_in_group"]), ", ".join(g["column_types"]), g["format"],
                         "" if g["rows_sampled"] is None else str(g["rows_sampled"]), result)
            parts.append(grid)
        parts += [Text(f"note: {n}") for n in self.notes]
        parts += [Text(f"failed: {f}", style="red") for f in self.failures]
        return Group(*parts)

    def exit_code(self) -> int:
        from migrator.errors import PreflightFailed

        return 0 if self.ok else PreflightFailed.exit_code


@dataclass
class WorkResult(Result):
    """`migrator run --worker`: what this worker waited for and did."""

    migration: str
    phase: str
    waited_for: list[str]
    tables_done: int
    recovered_tables: list[str]
    note: str

    def render(self) -> RenderableType:
        lines = [f"worker on migration {self.migration!r} (phase {self.phase}): {self.note}",
                 f"tables finished by the pass while this worker worked: {self.tables_done}"]
        if self.waited_for:
            lines.append("waited for the leader in phase(s): " + ", ".join(self.waited_for))
        if self.recovered_tables:
            lines.append(f"handed back {len(self.recovered_tables)} table(s) of a dead worker: "
                         + ", ".join(self.recovered_tables[:10]))
        return Text("\n".join(lines))
