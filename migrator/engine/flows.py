"""Machines bound to the store: one for a migration, one per table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.engine.definitions import MachineDef
from migrator.engine.machine import PersistedMachine
from migrator.engine.registry import Registry
from migrator.store import MigrationView, Store, TableView

DEFAULT_TABLE_LEASE_SECONDS = 120.0


class MigrationFlow(PersistedMachine):
    def __init__(self, definition: MachineDef, registry: Registry, store: Store, migration: MigrationView,
                 settings: Any = None) -> None:
        self.store = store
        super().__init__(definition, registry, migration, migration.phase, self._persist_phase, settings)

    def _persist_phase(self, trigger: str, dest: str, facts: Mapping[str, Any]) -> MigrationView:
        detail = dict(facts.get("detail", {}))
        if facts.get("gate"):
            detail["gate"] = facts["gate"]  # the store names the approval this move consumes
        return self.store.advance_migration(self.subject, trigger, dest, detail,
                                            finished=self.definition.state(dest).final)

    @property
    def migration(self) -> MigrationView:
        return self.subject  # type: ignore[no-any-return]


class TableFlow(PersistedMachine):
    """A table's machine. Entering an in-flight state takes the table's lease; leaving releases it."""

    def __init__(self, definition: MachineDef, registry: Registry, store: Store, task: TableView,
                 settings: Any = None, lease_seconds: float = DEFAULT_TABLE_LEASE_SECONDS) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        #: Set by the table worker walking this table: its reservation outlives the resting states
        #: between steps, so no other worker can take the table half-way (store.pick_table).
        self.keep_owner = False
        super().__init__(definition, registry, task, task.state, self._persist_move, settings)

    def _persist_move(self, trigger: str, dest: str, facts: Mapping[str, Any]) -> TableView:
        task: TableView = self.subject
        fields = dict(facts.get("fields", {}))
        detail = dict(facts.get("detail", {}))
        if "needs_operator" in self.definition.state(dest).tags and "error" in facts:
            return self.store.fail_table(task, str(facts["error"]), to_state=dest, trigger=trigger,
                                         fields=fields, detail=detail)
        if "in_flight" in self.definition.state(dest).tags:
            # A fresh attempt starts when work leaves a resting state for the first in-flight step.
            new_attempt = task.state == self.definition.initial
            return self.store.claim_table(task, trigger, dest, self.lease_seconds, fields=fields,
                                          new_attempt=new_attempt)
        # Into its `parted` state the table is given back: its parts are picked one by one, and the
        # table itself is picked again (join_parts) once they are all done.
        keep = self.keep_owner and not ({"done", "needs_operator", "parted"} & self.definition.state(dest).tags)
        return self.store.move_table(task, trigger, dest, fields=fields, detail=detail, release_lease=not keep)

    @property
    def task(self) -> TableView:
        return self.subject  # type: ignore[no-any-return]
