"""The one cutover, rollback and decommission shared by `unload-copy` and `snapshot-restore`.

Cutover swaps endpoints by renaming: source → `<id>-unencrypted-<yyyymmdd>`, target →
`<id>`, then reboots the target and checks it through the original name. A KMS cluster
with cross-region snapshot copy on cannot be renamed, so copy is disabled first (its
settings recorded) and re-enabled on the new cluster at the end, with a snapshot-copy grant.
Every remote step is a recorded action: a crash anywhere (between the two renames too)
resumes at the step that had not finished, re-attaching to a step that reached AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.config import ConnectionSection, LoadedConfig, Settings
from migrator.errors import PreflightFailed, UsageError, ValidationMismatch
from migrator.strategies import common

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext
    from migrator.store import Store

PLAN_KEY = "cutover:plan"
#: Phases from which a rollback only has to leave the source alone (nothing was renamed yet).
AFTER_CUTOVER = ("cutting_over", "awaiting_decommission")
DONE_PHASES = ("decommissioning", "completed")
ROLLBACK_LEASE_TTL = 60.0


@dataclass(frozen=True)
class Plan:
    source_id: str
    target_id: str
    old_name: str

    @property
    def final_snapshot(self) -> str:
        return f"{self.old_name}-final"[:255]


def old_name_for(source_id: str, when: datetime | None = None) -> str:
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d")
    suffix = f"-unencrypted-{stamp}"
    return source_id[:63 - len(suffix)].rstrip("-") + suffix


def plan(ctx: "PhaseContext") -> Plan:
    """Names fixed the first time cutover starts, so a resume on another day keeps them."""
    settings = ctx.config.settings
    source, target = settings.source.cluster_id, settings.target.cluster_id
    kept = common.remember(ctx, PLAN_KEY, {"source_id": source, "target_id": target,
                                           "old_name": old_name_for(source)})
    return Plan(kept["source_id"], kept["target_id"], kept["old_name"])


def target_connection(settings: Settings, cluster_id: str) -> ConnectionSection:
    """How to log in to the new cluster: its own credentials when configured, else the source's
    (a restored or mirrored cluster carries the same users)."""
    t = settings.target
    if t.password_env or t.secret_arn or t.iam_auth:
        return ConnectionSection(cluster_id=cluster_id, database=t.database, user=t.user, host=t.host, port=t.port,
                                 password_env=t.password_env, secret_arn=t.secret_arn, iam_auth=t.iam_auth)
    s = settings.source
    return ConnectionSection(cluster_id=cluster_id, database=s.database, user=s.user,
                             password_env=s.password_env, secret_arn=s.secret_arn, iam_auth=s.iam_auth)


# -- steps ----------------------------------------------------------------------------------

def _rename(ctx: "PhaseContext", key: str, old: str, new: str) -> dict[str, Any]:
    client_set = common.clients(ctx)

    def send() -> dict[str, Any]:
        aws.wait_available(client_set, old, should_stop=ctx.should_stop)
        if aws.describe_cluster(client_set, new) is not None:
            raise PreflightFailed(f"cannot rename {old} to {new}: a cluster named {new} already exists",
                                  hint="rename or delete it, then re-run")
        aws.call(f"ModifyCluster {old} → {new}", lambda: client_set.client("redshift").modify_cluster(
            ClusterIdentifier=old, NewClusterIdentifier=new))
        return {"from": old, "to": new}

    def took_effect() -> dict[str, Any] | None:
        return {"from": old, "to": new} if aws.describe_cluster(client_set, new) is not None \
            and aws.describe_cluster(client_set, old) is None else None

    done = common.once(ctx, key, {"ClusterIdentifier": old, "NewClusterIdentifier": new}, send, took_effect)
    aws.wait_available(client_set, new, should_stop=ctx.should_stop)
    return done


def _reboot(ctx: "PhaseContext", key: str, cluster_id: str) -> dict[str, Any]:
    client_set = common.clients(ctx)

    def send() -> dict[str, Any]:
        aws.wait_available(client_set, cluster_id, should_stop=ctx.should_stop)
        aws.call(f"RebootCluster {cluster_id}",
                 lambda: client_set.client("redshift").reboot_cluster(ClusterIdentifier=cluster_id))
        return {"cluster_id": cluster_id}

    def took_effect() -> dict[str, Any] | None:
        # A reboot in progress is re-attached; one that finished cannot be told apart, and a
        # second reboot is harmless, so it is sent again.
        cluster = aws.describe_cluster(client_set, cluster_id)
        return {"cluster_id": cluster_id} if cluster and cluster.get("ClusterStatus") == "rebooting" else None

    done = common.once(ctx, key, {"ClusterIdentifier": cluster_id}, send, took_effect)
    aws.wait_available(client_set, cluster_id, should_stop=ctx.should_stop)
    return done


def cutover(ctx: "PhaseContext") -> dict[str, Any]:
    """Swap the endpoints; every step recorded. Returns what was done."""
    p = plan(ctx)
    settings = ctx.config.settings
    common.disable_snapshot_copy(ctx, p.source_id)
    _rename(ctx, "cutover:rename_source", p.source_id, p.old_name)
    _rename(ctx, "cutover:rename_target", p.target_id, p.source_id)
    _reboot(ctx, "cutover:reboot_target", p.source_id)
    # Clients connect by the original name: check the new cluster through it.
    conn = target_connection(settings, p.source_id)
    conn_settings = settings.model_copy(update={"source": conn})
    expected = common.stored_baseline(ctx)
    found = common.measure(conn_settings, common.clients(ctx), p.source_id)
    from migrator.warehouse import baseline as bl

    differences = bl.compare(expected, found)
    ctx.store.add_event(ctx.migration, "migration", "validation",
                        {"cluster_id": p.source_id, "what": "after cutover",
                         "differences": [str(d) for d in differences]}, state=ctx.migration.phase)
    if differences:
        raise ValidationMismatch(f"after cutover, {p.source_id} differs from the baseline: "
                                 f"{bl.summary(differences)}",
                                 hint="`migrator rollback` swaps the names back")
    copy = common.restore_snapshot_copy(ctx, p.source_id)
    return {"old_name": p.old_name, "new_cluster": p.source_id, "snapshot_copy": copy}


def decommission(ctx: "PhaseContext") -> dict[str, Any]:
    """Final snapshot of the old source, then delete it (the gate made an operator confirm)."""
    p = plan(ctx)
    client_set = common.clients(ctx)
    request = {"ClusterIdentifier": p.old_name, "SkipFinalClusterSnapshot": False,
               "FinalClusterSnapshotIdentifier": p.final_snapshot}

    def send() -> dict[str, Any]:
        aws.wait_available(client_set, p.old_name, should_stop=ctx.should_stop)
        aws.call(f"DeleteCluster {p.old_name}", lambda: client_set.client("redshift").delete_cluster(**request))
        return {"deleted": p.old_name, "final_snapshot": p.final_snapshot}

    def took_effect() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, p.old_name)
        if cluster is None or cluster.get("ClusterStatus") == "deleting":
            return {"deleted": p.old_name, "final_snapshot": p.final_snapshot}
        return None

    done = common.once(ctx, "decommission:delete_old_source", request, send, took_effect)
    aws.wait_for_cluster(client_set, p.old_name, lambda c: c is None, what=f"deletion of {p.old_name}",
                         should_stop=ctx.should_stop)
    return done


# -- rollback -------------------------------------------------------------------------------

def _disable_copy_if_on(ctx: "PhaseContext", key: str, cluster_id: str) -> None:
    """Copy re-enabled on the new cluster at the end of cutover must be off again before it is renamed."""
    client_set = common.clients(ctx)
    if common.recorded(ctx, key) is None and aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id)) is None:
        return
    common.once(ctx, key, {"ClusterIdentifier": cluster_id},
                send=lambda: (aws.call(f"DisableSnapshotCopy {cluster_id}", lambda: client_set.client("redshift")
                                       .disable_snapshot_copy(ClusterIdentifier=cluster_id)), {})[1],
                took_effect=lambda: {} if aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id)) is None
                else None)


def rollback_steps(ctx: "PhaseContext", *, delete_target: bool = False) -> dict[str, Any]:
    """Undo what the migration did to production, as far as it is safe. Does not move the phase."""
    phase = ctx.migration.phase
    settings = ctx.config.settings
    if ctx.migration.strategy == "modify":
        raise UsageError("a 'modify' migration cannot be rolled back by migrator",
                         hint="to undo an encryption change, run a new 'modify' migration with the old setting")
    if phase in DONE_PHASES:
        kept = common.recorded(ctx, PLAN_KEY) or {}
        final = Plan(kept.get("source_id", ""), kept.get("target_id", ""), kept.get("old_name", "?")).final_snapshot
        raise UsageError(f"migration {ctx.migration.name!r} is {phase!r}: the old source is (being) deleted, so "
                         "the names cannot be swapped back",
                         hint=f"restore it by hand from its final snapshot {final} if you need it")
    if phase == "rolled_back":
        raise UsageError(f"migration {ctx.migration.name!r} was already rolled back")
    client_set = common.clients(ctx)
    done: dict[str, Any] = {"phase": phase}
    if common.recorded(ctx, PLAN_KEY) is not None:
        p = plan(ctx)
        old_exists = aws.describe_cluster(client_set, p.old_name) is not None
        if old_exists:
            # The target may already hold the original name: give it back its own first.
            if aws.describe_cluster(client_set, p.source_id) is not None:
                _disable_copy_if_on(ctx, "rollback:disable_copy", p.source_id)
                _rename(ctx, "rollback:rename_target_back", p.source_id, p.target_id)
            _rename(ctx, "rollback:rename_source_back", p.old_name, p.source_id)
            _reboot(ctx, "rollback:reboot_source", p.source_id)
            done["names_swapped_back"] = True
        restored = common.restore_snapshot_copy(ctx, p.source_id, action="enable-after-rollback")
        done["snapshot_copy"] = restored
    if delete_target:
        target = settings.target.cluster_id
        if target and aws.describe_cluster(client_set, target) is not None:
            aws.call(f"DeleteCluster {target}", lambda: client_set.client("redshift").delete_cluster(
                ClusterIdentifier=target, SkipFinalClusterSnapshot=True))
            done["target_deleted"] = target
    return done


def rollback(config: LoadedConfig, store: "Store", *, delete_target: bool = False,
             should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """`migrator rollback [--delete-target]`: takes the run lease, undoes, moves to `rolled_back`."""
    from migrator.engine.flows import MigrationFlow
    from migrator.engine.runner import PhaseContext, RunOptions, default_registry, load_machines

    settings = config.settings
    registry = default_registry(settings.migration.strategy)
    definition, table_definition = load_machines(settings.migration.strategy, registry)
    migration = store.require_migration(settings.migration.name)
    lease = store.acquire_run_lease(migration, ROLLBACK_LEASE_TTL)
    try:
        flow = MigrationFlow(definition, registry, store, migration, settings)
        ctx = PhaseContext(config, store, flow, table_definition, registry, RunOptions(), should_stop)
        done = rollback_steps(ctx, delete_target=delete_target)
        if not definition.transitions_from(flow.state, "rolled_back"):
            raise UsageError(f"phase {flow.state!r} cannot be rolled back")
        flow.fire("rolled_back", detail=done)
        return {**done, "phase": flow.state}
    finally:
        store.release_run_lease(lease)
