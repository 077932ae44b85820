"""Redshift control plane over moto: what moto 5.2.5 does not model.

moto keeps the clusters; this layer owns how they look over time. Every
Redshift query-protocol request passes through :meth:`RedshiftControlPlane.handle`
which either answers it itself (reboot, resize progress, events, HSM objects),
or validates it, forwards it to moto and then finishes the job moto leaves undone
(status transitions, KMS key, endpoint, rename without silent replacement).

Time is evaluated lazily from timestamps against an injectable clock, so no
background thread exists and tests control time without sleeping.

The parts, each a mixin of `RedshiftControlPlane` over `core.ControlPlaneCore`:

- ``dispatch``: the front (`handle`, `resolve`, call log, lost replies);
- ``lifecycle``: create, restore, modify, rename, reboot, pause, resume, IAM roles, delete;
- ``rules``: parameter validation rules; ``encryption``: KMS keys and encryption choices;
- ``snapshots``: manual snapshots, snapshot copy, snapshot schedules; ``hsm``: HSM objects;
- ``resize``: the resize an encryption change runs; ``transitions``: statuses over time;
- ``core``: shared state, lookups and the event log; ``model``, ``params``, ``rendering``:
  the vocabulary, parameter parsing and XML replies; ``node_types``: slices per node by node type.
"""

from __future__ import annotations

from migrator.sandbox.controlplane.dispatch import RedshiftControlPlane
from migrator.sandbox.controlplane.model import (ApiError, Clock, ClusterState, Durations, Forward, Reply,
                                                 wall_clock)

__all__ = ["ApiError", "Clock", "ClusterState", "Durations", "Forward", "RedshiftControlPlane", "Reply",
           "wall_clock"]
