"""Checkpoint store: models, schema versioning and the legal moves."""

from migrator.store.store import Probe, Store, utcnow
from migrator.store.views import (EventView, LeaseView, MigrationView, PartSpec, PartView, StateCount, TableSpec,
                                  TableView)

__all__ = ["EventView", "LeaseView", "MigrationView", "PartSpec", "PartView", "Probe", "StateCount", "Store", "TableSpec", "TableView", "utcnow"]
