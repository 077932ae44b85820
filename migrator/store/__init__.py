"""Checkpoint store: models, schema versioning and the legal moves."""

from migrator.store.store import EarlierMove, ExtraEvent, HeldMoves, PickedMove, Probe, Store, utcnow
from migrator.store.views import (EventView, LeaseView, MigrationView, PartSpec, PartView, StateCount, TableSpec,
                                  TableView)

__all__ = ["EarlierMove", "EventView", "ExtraEvent", "HeldMoves", "PickedMove", "LeaseView", "MigrationView", "PartSpec", "PartView", "Probe", "StateCount", "Store", "TableSpec", "TableView", "utcnow"]
