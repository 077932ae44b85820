"""The routes (strategies) migrator knows, each described once, as plain data.

A :class:`Route` carries everything the rest of the code used to decide by comparing strategy
names: the machine it runs (``states/<machine>.yaml``), the module that supplies its actions,
table steps, reconciler and undo steps (``migrator.strategies.<module>``, imported only when a
run builds it), what it needs from the config, how it is planned and what IAM it needs, and how
an operator passes its gates.

This module imports nothing from migrator, so the lowest layers (``config``, ``planning``,
``iam_policy``) and the quick reading commands (`status`, `history`) can ask a route without
pulling in a strategy (boto3, the warehouse driver). :data:`ROUTES` is the one registry of names;
``migrator.strategies.build`` turns a route into the runnable strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: How a route reaches the encrypted cluster, which decides the AWS requests `migrator plan`
#: lists: change the source in place, create a new cluster and copy the data into it, or
#: restore a snapshot of the source into a new cluster.
Provisioning = Literal["in-place", "create", "restore-snapshot"]
#: The target encryptions the config can ask for (``target.encryption``).
Encryption = Literal["kms", "hsm", "none"]


@dataclass(frozen=True)
class Suggestion:
    """When `migrator plan` suggests a route: the first suggestion (lowest ``rank`` over all
    routes) whose conditions the config and the source meet. ``reason`` may name ``{node_type}``
    (the source's node type, or "this node type" when unknown)."""

    rank: int
    reason: str
    encryption: Encryption | None = None
    node_type_prefix: str | None = None

    def applies(self, encryption: str, node_type: str) -> bool:
        if self.encryption is not None and encryption != self.encryption:
            return False
        return self.node_type_prefix is None or node_type.startswith(self.node_type_prefix)

    def why(self, node_type: str) -> str:
        return self.reason.format(node_type=node_type or "this node type")


@dataclass(frozen=True)
class Route:
    """One strategy, described once. Adding a route: a ``states/<name>.yaml``, a
    ``migrator/strategies/<module>.py`` and its entry in :data:`ROUTES` (plus the README)."""

    #: The name the config's ``migration.strategy`` gives.
    name: str
    #: The module under ``migrator.strategies`` with ``registry()`` (actions and table steps the
    #: YAML names) and, optionally, ``reconciler(config)``, ``undo`` and ``rollback_refusal``.
    module: str
    provisioning: Provisioning
    #: The target encryptions this route can reach.
    reaches: frozenset[str]
    #: Whether it copies the tables through an S3 staging prefix (config needs ``[staging]``).
    stages_in_s3: bool = False
    #: `migrator plan`: what the write freeze (or read-only window) spans; ``{span}`` is the
    #: estimated duration ("about 2 h").
    freeze_window: str = ""
    #: `migrator plan`: the suggestions that pick this route.
    suggestions: tuple[Suggestion, ...] = ()
    #: How an operator passes each gate (``approval:`` in the YAML) of this route.
    gates: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def machine(self) -> str:
        """The machine definition it runs: ``states/<machine>.yaml``."""
        return self.name

    @property
    def module_path(self) -> str:
        return f"migrator.strategies.{self.module}"

    @property
    def new_cluster(self) -> bool:
        """Builds a new cluster beside the source and swaps names at cutover (the config needs a
        distinct ``target.cluster_id``); otherwise it changes the source in place."""
        return self.provisioning != "in-place"

    def config_problems(self, *, source_cluster: str, target_cluster: str, staging: bool,
                        encryption: str) -> list[str]:
        """What the config lacks (or has that this route cannot do), one line each."""
        problems: list[str] = []
        if self.new_cluster:
            if not target_cluster:
                problems.append(f"target.cluster_id: required for strategy {self.name!r}")
            elif target_cluster == source_cluster:
                problems.append("target.cluster_id: must differ from source.cluster_id")
        if self.stages_in_s3 and not staging:
            problems.append(f"staging: section required for strategy {self.name!r}")
        if encryption == "hsm" and "hsm" not in self.reaches:
            able = [r.name for r in ROUTES.values() if "hsm" in r.reaches]
            problems.append(f"target.encryption: HSM cannot be enabled by {self.name!r}; use strategy "
                            + " or ".join(repr(n) for n in able))
        return problems


#: Gates shared by the routes that build a new cluster and swap it in.
_CUTOVER_GATES = MappingProxyType({
    "cutover": "`migrator cutover` or `migrator run --approve-cutover`",
    "decommission": "`migrator decommission --confirm`",
})

UNLOAD_COPY = Route(
    name="unload-copy", module="unload_copy", provisioning="create", reaches=frozenset({"kms", "hsm", "none"}),
    stages_in_s3=True,
    freeze_window="production stays writable during the copy ({span}); writes stop only for the cutover window: "
                  "the freeze check, one comparison pass over every table, the copy of what changed, the swap",
    suggestions=(Suggestion(1, "HSM can only be reached by copying the data into a new HSM-encrypted cluster",
                            encryption="hsm"),),
    gates=_CUTOVER_GATES,
)
MODIFY = Route(
    name="modify", module="modify", provisioning="in-place", reaches=frozenset({"kms", "none"}),
    freeze_window="the cluster is read-only while it resizes ({span}); no cutover",
    suggestions=(Suggestion(2, "removing encryption is an in-place ModifyCluster", encryption="none"),
                 Suggestion(9, "{node_type} cannot restore into KMS; in-place ModifyCluster encrypts without "
                               "copying data by hand (the cluster is read-only while it resizes)")),
    gates=MappingProxyType({"modify": "`migrator run --approve-modify`"}),
)
SNAPSHOT_RESTORE = Route(
    name="snapshot-restore", module="snapshot_restore", provisioning="restore-snapshot",
    reaches=frozenset({"kms", "none"}),
    freeze_window="writes stop from the snapshot until cutover (restore time plus validation)",
    suggestions=(Suggestion(3, "{node_type} can restore an unencrypted snapshot straight into a KMS-encrypted "
                               "cluster; writes to the source stop from the snapshot until cutover (what is "
                               "written after the snapshot would be lost); `modify` is the in-place "
                               "alternative (read-only while it resizes)", node_type_prefix="ra3"),),
    gates=_CUTOVER_GATES,
)

#: Every route, by the name the config gives (the one registry of strategy names).
ROUTES: Mapping[str, Route] = MappingProxyType({r.name: r for r in (UNLOAD_COPY, MODIFY, SNAPSHOT_RESTORE)})


def names() -> tuple[str, ...]:
    """The strategy names a config may give, in the order the docs list them."""
    return tuple(ROUTES)


def route(name: str) -> Route:
    """The route named ``name``; a KeyError names the known ones."""
    try:
        return ROUTES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r} (one of: {', '.join(names())})") from None


def suggest(encryption: str, node_type: str) -> tuple[Route, str]:
    """The route `migrator plan` suggests for this target encryption and source node type, and why."""
    ranked = sorted(((s, r) for r in ROUTES.values() for s in r.suggestions if encryption in r.reaches),
                    key=lambda pair: pair[0].rank)
    for suggestion, found in ranked:
        if suggestion.applies(encryption, node_type):
            return found, suggestion.why(node_type)
    raise LookupError(f"no route reaches target encryption {encryption!r}")


def how_to_pass(gate: str) -> str:
    """How an operator passes ``gate`` (for `status`, which knows only the gate's name)."""
    for found in ROUTES.values():
        if gate in found.gates:
            return found.gates[gate]
    return f"approve the {gate} gate"
