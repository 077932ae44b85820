"""Machines bound to the store: one for a migration, one per table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from migrator.engine.definitions import MachineDef
from migrator.engine.machine import PersistedMachine
from migrator.engine.registry import Registry
from migrator.store import EarlierMove, ExtraEvent, HeldMoves, MigrationView, Store, TableView

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
        #: Set by the table worker: the events to record with the move into an in-flight state
        #: (given the step's name and the table as it will be), e.g. the statement the step runs first.
        self.announce: Callable[[str, TableView], list[ExtraEvent]] | None = None
        #: Set by the table worker: a completing move into a `done` state is held back too, and
        #: written with the worker's next pick (held()).
        self.hold_done = False
        self._stored = task
        self._earlier: list[EarlierMove] = []
        super().__init__(definition, registry, task, task.state, self._persist_move, settings)

    def _persist_move(self, trigger: str, dest: str, facts: Mapping[str, Any]) -> TableView:
        task: TableView = self.subject  # as in memory: moves held back (``defer``) included
        fields = dict(facts.get("fields", {}))
        detail = dict(facts.get("detail", {}))
        tags = self.definition.state(dest).tags
        resting = not ({"done", "needs_operator", "parted", "in_flight"} & tags)
        finished = self.hold_done and "done" in tags and "needs_operator" not in tags
        if facts.get("defer") and self.keep_owner and (resting or finished):
            # A step's completing move into a resting state whose `next` the walker takes at once:
            # written with that next move, one transaction for both (a crash between them finds the
            # table still in flight, whose `lost` move hands it back as before).
            self._earlier.append(EarlierMove(trigger, dest, fields, detail))
            return replace(task, state=dest, **fields)
        earlier, self._earlier = self._earlier, []
        stored = self._stored
        try:
            moved = self._write(stored, task, trigger, dest, fields, detail, facts, earlier)
        except BaseException:
            self._earlier = earlier
            raise
        self._stored = moved
        return moved

    def _write(self, stored: TableView, task: TableView, trigger: str, dest: str, fields: dict[str, Any],
               detail: dict[str, Any], facts: Mapping[str, Any], earlier: list[EarlierMove]) -> TableView:
        tags = self.definition.state(dest).tags
        if "needs_operator" in tags and "error" in facts:
            return self.store.fail_table(stored, str(facts["error"]), to_state=dest, trigger=trigger,
                                         fields=fields, detail=detail, earlier=earlier)
        if "in_flight" in tags:
            # A fresh attempt starts when work leaves a resting state for the first in-flight step.
            new_attempt = task.state == self.definition.initial
            step = self.definition.state(dest).step
            events = []
            if self.announce is not None and step is not None:
                events = self.announce(step, replace(task, state=dest, attempt=task.attempt + int(new_attempt),
                                                     **fields))
            return self.store.claim_table(stored, trigger, dest, self.lease_seconds, fields=fields,
                                          new_attempt=new_attempt, earlier=earlier, events=events)
        # Into its `parted` state the table is given back: its parts are picked one by one, and the
        # table itself is picked again (join_parts) once they are all done.
        keep = self.keep_owner and not ({"done", "needs_operator", "parted"} & tags)
        return self.store.move_table(stored, trigger, dest, fields=fields, detail=detail, release_lease=not keep,
                                     earlier=earlier)

    def held(self) -> HeldMoves | None:
        """The moves held back that end the walk (into a `done` state), for the next pick to write."""
        if not self._earlier:
            return None
        moves, self._earlier = self._earlier, []
        return HeldMoves(self._stored, tuple(moves))

    def flush(self) -> None:
        """Write the moves held back (``defer``) on their own, before the walker stops at a resting state."""
        if not self._earlier:
            return
        *earlier, last = self._earlier
        self._earlier = []
        moved = self.store.move_table(self._stored, last.trigger, last.to_state, fields=last.fields,
                                      detail=last.detail, release_lease=not self.keep_owner, earlier=earlier)
        self._stored = moved
        self.refresh(moved)

    @property
    def task(self) -> TableView:
        return self.subject  # type: ignore[no-any-return]
