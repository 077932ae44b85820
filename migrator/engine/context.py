"""What a phase action is handed: the run's options and the phase context.

Its own module, below the runner: the registry, the gates, the table driver and every
strategy name PhaseContext, and the runner imports all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrator.config import LoadedConfig
from migrator.engine.definitions import MachineDef, StateDef
from migrator.engine.flows import MigrationFlow, TableFlow
from migrator.engine.registry import Registry
from migrator.store import MigrationView, Store, TableView


@dataclass
class RunOptions:
    approve_cutover: bool = False
    approve_modify: bool = False
    assume_frozen: bool = False
    #: `migrator rollback --delete-target`: the undo steps also delete the new cluster.
    delete_target: bool = False
    #: With ``delete_target``: delete without a final snapshot (`--skip-final-snapshot`).
    skip_final_snapshot: bool = False
    #: `--accept-stray-writes`: decommission goes ahead despite stray writes or a hole in their proof (recorded).
    accept_stray_writes: bool = False
    #: Stop after this many phase moves (tests and `--step`); None runs to the end or a gate.
    max_steps: int | None = None

    def approves(self, gate: str) -> bool:
        """Whether this run was told to pass ``gate`` when it reaches it."""
        return {"cutover": self.approve_cutover, "modify": self.approve_modify}.get(gate, False)


@dataclass
class PhaseContext:
    """What a phase action gets: the config, the store, the flows, and a scratch dict of facts."""

    config: LoadedConfig
    store: Store
    flow: MigrationFlow
    table_definition: MachineDef
    registry: Registry
    options: RunOptions
    should_stop: Callable[[], bool]
    facts: dict[str, Any] = field(default_factory=dict)
    #: Hands back tables whose owner died (the runner's recovery); the table driver calls it while
    #: it waits for tables other workers hold.
    recover: Callable[[], list[str]] = field(default=lambda: [])
    #: "leader" (`migrator run`: control-plane phases and the pass's bookkeeping) or "worker"
    #: (`migrator run --worker`: tables only).
    role: str = "leader"
    #: What a pass over the tables reads once and its workers share (the source inventory): set
    #: by the table driver for the length of one pass, None outside a pass.
    pass_cache: dict[str, Any] | None = None
    pass_lock: threading.Lock = field(default_factory=threading.Lock)

    def shared(self, key: str, read: Callable[[], Any]) -> Any:
        """``read()`` once per pass and shared by the pass's workers; outside a pass, every call reads."""
        if self.pass_cache is None:
            return read()
        with self.pass_lock:  # the other workers wait for the one read rather than repeat it
            if key not in self.pass_cache:
                self.pass_cache[key] = read()
            return self.pass_cache[key]

    @property
    def migration(self) -> MigrationView:
        return self.flow.migration

    @property
    def state_def(self) -> StateDef:
        return self.flow.definition.state(self.flow.state)

    def table_flow(self, task: TableView) -> TableFlow:
        return TableFlow(self.table_definition, self.registry, self.store, task, self.config.settings)

    def tables_not_done(self) -> int:
        """Tables not in a `done`-tagged state of the table machine."""
        done = set(self.table_definition.tagged("done"))
        return sum(c.tables for c in self.store.count_by_state(self.migration) if c.state not in done)
