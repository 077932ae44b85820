"""The one cutover, rollback and decommission shared by `unload-copy` and `snapshot-restore`.

Cutover swaps endpoints by renaming: source → `<id>-unencrypted-<yyyymmdd>`, target →
`<id>`, then reboots the target and checks it through the original name. A KMS cluster
with cross-region snapshot copy on cannot be renamed, so copy is disabled first (its
settings recorded) and re-enabled on the new cluster at the end, with a snapshot-copy grant.
Every remote step is a recorded action: a crash anywhere (between the two renames too)
resumes at the step that had not finished, re-attaching to a step that reached AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.config import ConnectionSection, Settings
from migrator.engine.runner import ROLLBACK_TRIGGER
from migrator.errors import MigratorError, PreflightFailed, UsageError
from migrator.strategies import common

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext

PLAN_KEY = "cutover:plan"
DECOMMISSION_KEY = "decommission:delete_old_source"
RETIRE_KEY = "cutover:tag_source_retired"
RENAME_SOURCE_KEY = "cutover:rename_source"
DELETE_TARGET_KEY = "rollback:delete_target"
#: Where each strategy records that it created the target (unload-copy, snapshot-restore).
CREATION_KEYS = ("provision-target", "restore_from_snapshot")
_BEING_DELETED = frozenset({"final-snapshot", "deleting"})
#: How long each wait may take before the tool stops and says what it waited for (seconds;
#: overridable by environment for rehearsals: MIGRATOR_WAIT_<NAME>_SECONDS).
WAIT_SECONDS = {"ready": 6 * 3600.0, "swap": 900.0, "delete": 6 * 3600.0}


def wait_seconds(name: str) -> float:
    override = os.environ.get(f"MIGRATOR_WAIT_{name.upper()}_SECONDS")
    return float(override) if override else WAIT_SECONDS[name]


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
    _retire_source(ctx, p)
    _rename(ctx, RENAME_SOURCE_KEY, p.source_id, p.old_name)
    _rename(ctx, "cutover:rename_target", p.target_id, p.source_id)
    _reboot(ctx, "cutover:reboot_target", p.source_id)
    # Clients connect by the original name: check the new cluster through it.
    common.check_against_baseline(ctx, p.source_id, "after cutover",
                                  conn=target_connection(settings, p.source_id),
                                  hint="`migrator rollback` swaps the names back")
    copy = common.restore_snapshot_copy(ctx, p.source_id)
    return {"old_name": p.old_name, "new_cluster": p.source_id, "snapshot_copy": copy}


def _retire_source(ctx: "PhaseContext", p: Plan) -> None:
    """Tag the source as retired by this migration before it is renamed away: decommission deletes
    the old cluster only when it carries this tag AND the store recorded the rename (see ownership)."""
    client_set = common.clients(ctx)
    name = ctx.migration.name

    def tagged() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, p.source_id)
        return {"cluster_id": p.source_id} if aws.tag_value(cluster, aws.RETIRED_TAG) == name else None

    def send() -> dict[str, Any]:
        aws.tag_cluster(client_set, p.source_id, {aws.RETIRED_TAG: name})
        return {"cluster_id": p.source_id}

    if common.recorded(ctx, RETIRE_KEY) is None and tagged() is not None:
        common.remember(ctx, RETIRE_KEY, {"cluster_id": p.source_id, "already_tagged": True})
        return
    common.once(ctx, RETIRE_KEY, {"ClusterIdentifier": p.source_id, "Tag": {aws.RETIRED_TAG: name}}, send, tagged)


def _retired_record(ctx: "PhaseContext", p: Plan) -> dict[str, Any] | None:
    """The store's proof that this migration retired the cluster now named ``p.old_name``: the
    source was tagged and then renamed to that name, both recorded."""
    renamed = common.recorded(ctx, RENAME_SOURCE_KEY)
    if common.recorded(ctx, RETIRE_KEY) is None or renamed is None or renamed.get("to") != p.old_name:
        return None
    return {"cluster_id": p.old_name}


def decommission(ctx: "PhaseContext") -> dict[str, Any]:
    """Final snapshot of the old source, then delete it (the gate made an operator confirm).
    Only a cluster this migration retired (recorded rename AND the retired tag) is ever deleted."""
    p = plan(ctx)
    client_set = common.clients(ctx)
    name = ctx.migration.name
    request = {"ClusterIdentifier": p.old_name, "SkipFinalClusterSnapshot": False,
               "FinalClusterSnapshotIdentifier": p.final_snapshot}

    def send() -> dict[str, Any]:
        aws.wait_available(client_set, p.old_name, should_stop=ctx.should_stop, timeout=wait_seconds("ready"),
                           what=f"old source {p.old_name} to be available before its final snapshot")
        aws.delete_owned_cluster(client_set, p.old_name, name, recorded=_retired_record(ctx, p),
                                 tag_key=aws.RETIRED_TAG, final_snapshot=p.final_snapshot)
        return {"deleted": p.old_name, "final_snapshot": p.final_snapshot}

    def took_effect() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, p.old_name)
        if cluster is None or cluster.get("ClusterStatus") in _BEING_DELETED:
            return {"deleted": p.old_name, "final_snapshot": p.final_snapshot}
        return None

    if ctx.store.get_action(ctx.migration, DECOMMISSION_KEY) is None:
        # Refuse before anything is recorded: a cluster we did not retire is never touched.
        aws.ownership(client_set, p.old_name, name, recorded=_retired_record(ctx, p),
                      tag_key=aws.RETIRED_TAG).require("delete")
    done = common.once(ctx, DECOMMISSION_KEY, request, send, took_effect)
    aws.wait_for_cluster(client_set, p.old_name, lambda c: c is None, what=f"deletion of {p.old_name}",
                         should_stop=ctx.should_stop, timeout=wait_seconds("delete"))
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


def rollback_refusal(ctx: "PhaseContext") -> MigratorError:
    """Why the migration cannot be rolled back from where it stands (the machine has no move)."""
    name, phase = ctx.migration.name, ctx.migration.phase
    if ctx.store.get_action(ctx.migration, DECOMMISSION_KEY) is not None:
        kept = common.recorded(ctx, PLAN_KEY) or {}
        final = Plan(kept.get("source_id", ""), kept.get("target_id", ""), kept.get("old_name", "?")).final_snapshot
        return UsageError(f"migration {name!r} is {phase!r}: the old source is (being) deleted, so the names "
                          "cannot be swapped back",
                          hint=f"restore it by hand from its final snapshot {final} if you need it")
    rolled_back = {t.dest for t in ctx.flow.definition.transitions if t.trigger == ROLLBACK_TRIGGER}
    if phase in rolled_back:
        return UsageError(f"migration {name!r} was already rolled back")
    return UsageError(f"migration {name!r} is in phase {phase!r}, from which it cannot be rolled back",
                      hint="`migrator status` shows where it stands")


def undo(ctx: "PhaseContext") -> dict[str, Any]:
    """Put production back as far as it is safe: swap the names back if cutover renamed anything,
    re-enable snapshot copy on the source, and (``--delete-target``) delete the new cluster.
    Every step is a recorded action, so a rollback that died half-way resumes where it stopped."""
    settings = ctx.config.settings
    client_set = common.clients(ctx)
    done: dict[str, Any] = {}
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
    if ctx.options.delete_target:
        done.update(_delete_target(ctx))
    return done


def creation_record(ctx: "PhaseContext") -> dict[str, Any] | None:
    """What the store recorded of this migration creating its target (CreateCluster or a restore),
    as {"cluster_id": ...}; None when it never asked AWS to create one."""
    for key in CREATION_KEYS:
        found = ctx.store.get_action(ctx.migration, key)
        if found is None:
            continue
        response = found.response or {}
        cluster_id = (response.get("cluster_id") or (response.get("cluster") or {}).get("cluster_id")
                      or (found.request or {}).get("ClusterIdentifier"))
        return {"cluster_id": cluster_id, "action": key, "status": found.status}
    return None


def delete_target_request(target: str, migration: str, *, skip_final_snapshot: bool) -> dict[str, Any]:
    request: dict[str, Any] = {"ClusterIdentifier": target, "SkipFinalClusterSnapshot": skip_final_snapshot}
    if not skip_final_snapshot:
        request["FinalClusterSnapshotIdentifier"] = aws.final_snapshot_id(target, migration)
    return request


def _delete_target(ctx: "PhaseContext") -> dict[str, Any]:
    """`rollback --delete-target --confirm`: delete the new cluster, only when this migration
    created it (recorded creation AND its owner tag), with a final snapshot unless told otherwise.
    The delete is recorded before it is sent; a resume re-attaches to a delete that reached AWS."""
    client_set = common.clients(ctx)
    name = ctx.migration.name
    target = ctx.config.settings.target.cluster_id
    existing = ctx.store.get_action(ctx.migration, DELETE_TARGET_KEY)
    request = dict(existing.request) if existing is not None else delete_target_request(
        target, name, skip_final_snapshot=ctx.options.skip_final_snapshot)
    target = str(request["ClusterIdentifier"])
    snapshot = request.get("FinalClusterSnapshotIdentifier")
    outcome = {"target_deleted": target, "final_snapshot": snapshot}
    if existing is None:
        if aws.describe_cluster(client_set, target) is None:
            return {"target_deleted": None, "note": f"no cluster {target} exists; nothing deleted"}
        aws.ownership(client_set, target, name, recorded=creation_record(ctx)).require("delete")

    def send() -> dict[str, Any]:
        aws.wait_available(client_set, target, should_stop=ctx.should_stop, timeout=wait_seconds("ready"),
                           what=f"new cluster {target} to be available before it is deleted")
        aws.delete_owned_cluster(client_set, target, name, recorded=creation_record(ctx),
                                 final_snapshot=snapshot, skip_final_snapshot=not snapshot)
        return outcome

    def took_effect() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, target)
        return outcome if cluster is None or cluster.get("ClusterStatus") in _BEING_DELETED else None

    return common.once(ctx, DELETE_TARGET_KEY, request, send, took_effect)
