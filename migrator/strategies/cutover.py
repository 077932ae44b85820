"""The one cutover, rollback and decommission shared by `unload-copy` and `snapshot-restore`.

Cutover swaps endpoints by renaming: source → `<id>-unencrypted-<yyyymmdd>`, target →
`<id>`, and checks the target through the original name. No reboot is sent: a rename itself
reboots the cluster and drops its connections (Management Guide, "Renaming clusters"), so one
more would be a second outage for nothing. A KMS cluster
with cross-region snapshot copy on cannot be renamed, so copy is disabled first (its
settings recorded) and re-enabled on the new cluster at the end, with a snapshot-copy grant.
Every remote step is a recorded action: a crash anywhere (between the two renames too)
resumes at the step that had not finished, re-attaching to a step that reached AWS.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator import failpoints, interrupt
from migrator.aws import clusters as aws
from migrator.aws import preflight
from migrator.aws.errors import describe, error_code
from migrator.engine.runner import ROLLBACK_TRIGGER
from migrator.errors import (MigratorError, PreflightFailed, RemoteError, TransientError, UsageError,
                             ValidationMismatch)
from migrator.names import renamed_away_name
from migrator.retry import Backoff, wait_until
from migrator.strategies import common, encryption, recorded, sessions, stray_writes
from migrator.strategies.swap_record import PLAN_KEY, PRODUCTION_ANSWERS_KEY, SwapKeys, swap_keys

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger("migrator.cutover")
SWAP_BACKOFF = Backoff(base=0.5, cap=15.0)

DECOMMISSION_KEY = "decommission:delete_old_source"
RETIRE_KEY = "cutover:tag_source_retired"
DELETE_TARGET_KEY = "rollback:delete_target"
#: Where each strategy records that it created the target (unload-copy, snapshot-restore).
CREATION_KEYS = ("provision-target", "restore_from_snapshot")
_BEING_DELETED = frozenset({"final-snapshot", "deleting"})
#: How long each wait may take before the tool stops and says what it waited for (seconds;
#: overridable by environment for rehearsals: MIGRATOR_WAIT_<NAME>_SECONDS).
WAIT_SECONDS = {"ready": 6 * 3600.0, "swap": 900.0, "delete": 6 * 3600.0, "dns": 1800.0}
NAMESPACE_KEY = "cutover:target_namespace"


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
    return renamed_away_name(source_id, (when or datetime.now(UTC)).strftime("%Y%m%d"))


def plan(ctx: "PhaseContext") -> Plan:
    """Names fixed the first time cutover starts, so a resume on another day keeps them."""
    settings = ctx.config.settings
    source, target = settings.source.cluster_id, settings.target.cluster_id
    kept = recorded.remember(ctx, PLAN_KEY, {"source_id": source, "target_id": target,
                                             "old_name": old_name_for(source)})
    return Plan(kept["source_id"], kept["target_id"], kept["old_name"])


# -- waiting with a deadline ----------------------------------------------------------------

def wait_ready(ctx: "PhaseContext", cluster_id: str, why: str, *, timeout: float | None = None,
               nothing_pending: bool = False) -> dict[str, Any]:
    """Wait until ``cluster_id`` is available (and, with ``nothing_pending``, has no pending
    modified values), saying what it waits for. A status that does not end on its own ends the
    wait at once with one line: paused → resume it (exit 7), being deleted, failed, missing."""
    client_set = recorded.clients(ctx)
    region = ctx.config.settings.migration.region
    seen: dict[str, Any] = {}

    def ready(cluster: dict[str, Any] | None) -> bool:
        condition = preflight.cluster_condition(cluster, cluster_id, region)
        if condition.status != seen.get("status"):
            seen["status"] = condition.status
            common.progress_event(ctx, f"cluster:{cluster_id}", {"cluster_status": condition.status,
                                                                 "waiting_for": why})
        if condition.readiness in (preflight.Readiness.READY, preflight.Readiness.CHANGING):
            pending = (cluster or {}).get("PendingModifiedValues") or {}
            return condition.readiness is preflight.Readiness.READY and not (nothing_pending and pending)
        raise PreflightFailed(f"{why}: {condition.problem}",
                              hint=f"`migrator run -c <config>` continues once {cluster_id} is available")

    found = aws.wait_for_cluster(client_set, cluster_id, ready, should_stop=ctx.should_stop,
                                 timeout=wait_seconds("ready") if timeout is None else timeout,
                                 what=f"{cluster_id} to be available{' with nothing pending' if nothing_pending else ''}"
                                      f" ({why})")
    assert found is not None
    return found


# -- steps ----------------------------------------------------------------------------------

class SwapRefused(Exception):
    """AWS kept refusing a rename until the deadline (the cluster busy, or the name still held)."""


#: Refusals that end on their own: the cluster is busy (InvalidClusterState) or the name is not yet free.
_RETRIED_RENAME_CODES = frozenset({"InvalidClusterState", "ClusterAlreadyExists"})


def _send_rename(ctx: "PhaseContext", old: str, new: str, deadline: float | None) -> None:
    """ModifyCluster NewClusterIdentifier; with a deadline, a refusal that ends on its own is
    retried (backoff with jitter) until then, and then raised as SwapRefused."""
    client_set = recorded.clients(ctx)
    attempt = 0
    while True:
        try:
            client_set.client("redshift").modify_cluster(ClusterIdentifier=old, NewClusterIdentifier=new)
            return
        except ClientError as exc:
            code = error_code(exc)
            if deadline is None or code not in _RETRIED_RENAME_CODES:
                raise aws.aws_error(exc, f"ModifyCluster {old} → {new}") from None
            if time.monotonic() >= deadline or ctx.should_stop():
                raise SwapRefused(describe(exc)) from None
            attempt += 1
            if attempt == 1:  # once in the history; each retry in the log
                ctx.store.add_event(ctx.migration, "migration", "rename_refused",
                                    {"from": old, "to": new, "reason": describe(exc), "retrying_for_seconds":
                                     round(deadline - time.monotonic())}, state=ctx.migration.phase)
            log.info("rename %s → %s refused (%s); retry %d", old, new, describe(exc), attempt)
            time.sleep(min(max(0.05, SWAP_BACKOFF.delay(attempt)), max(0.0, deadline - time.monotonic())))
        except BotoCoreError as exc:
            raise aws.aws_error(exc, f"ModifyCluster {old} → {new}") from None


def _rename(ctx: "PhaseContext", key: str, old: str, new: str, *, wait_after: bool = True,
            retry_until: float | None = None) -> dict[str, Any]:
    client_set = recorded.clients(ctx)

    def send() -> dict[str, Any]:
        if retry_until is None:
            wait_ready(ctx, old, f"rename {old} → {new}")
        # (with a deadline a busy cluster is retried in _send_rename, within the swap's own deadline)
        if retry_until is None and aws.describe_cluster(client_set, new) is not None:
            raise PreflightFailed(f"cannot rename {old} to {new}: a cluster named {new} already exists",
                                  hint="rename or delete it, then re-run")
        _send_rename(ctx, old, new, retry_until)
        return {"from": old, "to": new}

    def took_effect() -> dict[str, Any] | None:
        return {"from": old, "to": new} if aws.describe_cluster(client_set, new) is not None \
            and aws.describe_cluster(client_set, old) is None else None

    done = recorded.once(ctx, key, {"ClusterIdentifier": old, "NewClusterIdentifier": new}, send, took_effect)
    if wait_after:
        wait_ready(ctx, new, f"{new} to come back after its rename from {old}")
    return done


def _give_back(ctx: "PhaseContext", p: Plan, keys: SwapKeys, reason: str) -> None:
    """The new cluster would not take the production name: give it back to the source, say so."""
    settings = ctx.config.settings
    try:
        _rename(ctx, keys.give_back, p.old_name, p.source_id, retry_until=time.monotonic() + wait_seconds("swap"))
    except (MigratorError, SwapRefused) as exc:
        detail = exc.one_line() if isinstance(exc, MigratorError) else str(exc)
        raise RemoteError(f"PRODUCTION NAME {p.source_id} HAS NO CLUSTER: {p.target_id} refused the rename to "
                          f"{p.source_id} ({reason}) and giving the name back to the source {p.old_name} failed too "
                          f"({detail})", hint=f"rename {p.old_name} back to {p.source_id} now (`aws redshift "
                          f"modify-cluster --region {settings.migration.region} --cluster-identifier {p.old_name} "
                          f"--new-cluster-identifier {p.source_id}`), or re-run `migrator run` / `migrator "
                          "rollback`") from None
    ctx.store.add_event(ctx.migration, "migration", "cutover_gave_back",
                        {"source": p.source_id, "target": p.target_id, "reason": reason}, state=ctx.migration.phase)
    raise RemoteError(f"cutover did not complete: {p.target_id} kept refusing the rename to {p.source_id} for "
                      f"{wait_seconds('swap'):.0f}s ({reason}); the source was renamed back to {p.source_id}, so "
                      "production is as before the cutover",
                      hint=f"when {p.target_id} is available with nothing pending, `migrator run` tries the cutover "
                           "again; or `migrator rollback`")


def swap(ctx: "PhaseContext", p: Plan, before_rename: Callable[[], None] | None = None) -> None:
    """Source away, target in, with the production name unheld only for the swap itself: the
    target must be ready first; a refused second rename is retried until a deadline, then the
    source gets its name back. ``before_rename`` runs last before the first rename is recorded
    (the route's proof that nothing was written since the data was caught up); it raises to stop."""
    keys = swap_keys(ctx.store, ctx.migration)
    if recorded.recorded(ctx, keys.rename_target) is not None:
        return
    if ctx.store.get_action(ctx.migration, keys.rename_source) is None:
        wait_ready(ctx, p.target_id, f"new cluster {p.target_id} must be ready before {p.source_id} is renamed away",
                   nothing_pending=True)
        wait_ready(ctx, p.source_id, f"{p.source_id} must be available to be renamed")
        failpoints.hit("before_first_rename")
        if before_rename is not None:
            before_rename()
        _retire_source(ctx, p)
    # The name is free as soon as the first rename is accepted: do not wait for its reboot.
    # A stop asked for (SIGTERM) during the swap waits for its end: never between the renames.
    with interrupt.deferred():
        _rename(ctx, keys.rename_source, p.source_id, p.old_name, wait_after=False)
        failpoints.hit("between_renames")
        try:
            _rename(ctx, keys.rename_target, p.target_id, p.source_id, wait_after=False,
                    retry_until=time.monotonic() + wait_seconds("swap"))
        except SwapRefused as exc:
            _give_back(ctx, p, keys, str(exc))


def cutover(ctx: "PhaseContext", *, before_rename: Callable[[], None] | None = None,
            baseline_key: str | None = None) -> dict[str, Any]:
    """Swap the endpoints; every step recorded. Returns what was done. ``baseline_key`` names the
    recorded baseline the production name must show afterwards (default: the route's one baseline)."""
    encryption.check_new_cluster_encryption(ctx, "before cutover")
    p = plan(ctx)
    settings = ctx.config.settings
    common.disable_snapshot_copy(ctx, p.source_id)
    # The new cluster's namespace, read before the swap (afterwards its own name is gone).
    expected = recorded.recorded(ctx, NAMESPACE_KEY) or recorded.remember(
        ctx, NAMESPACE_KEY, {"target_id": p.target_id, "namespace": namespace_of(ctx, p.target_id)})
    swap(ctx, p, before_rename)
    # The rename restarts the cluster (renaming, then rebooting): it is back once available.
    wait_ready(ctx, p.source_id, f"new cluster, now {p.source_id}, to come back after its rename")
    # Clients connect by the original name: prove it reaches the new cluster, then check it.
    reached = await_new_cluster_behind_name(ctx, p, str(expected["namespace"]))
    common.check_against_baseline(ctx, p.source_id, "after cutover", baseline_key=baseline_key,
                                  conn=sessions.target_connection(settings, p.source_id),
                                  hint="`migrator rollback` swaps the names back")
    copy = common.restore_snapshot_copy(ctx, p.source_id)
    # The evidence: the cluster answering under the production name, as AWS describes it now.
    answering = aws.require_cluster(recorded.clients(ctx), p.source_id)
    recorded.remember(ctx, PRODUCTION_ANSWERS_KEY, {
        "cluster_id": p.source_id, "encrypted": bool(answering.get("Encrypted")),
        "kms_key_id": answering.get("KmsKeyId"), "namespace": reached, "status": answering.get("ClusterStatus")})
    return {"old_name": p.old_name, "new_cluster": p.source_id, "snapshot_copy": copy, "namespace": reached}


def namespace_of(ctx: "PhaseContext", cluster_id: str) -> str:
    """The namespace GUID of ``cluster_id`` (the tail of its ClusterNamespaceArn)."""
    cluster = aws.require_cluster(recorded.clients(ctx), cluster_id)
    arn = str(cluster.get("ClusterNamespaceArn") or "")
    if not arn:
        raise RemoteError(f"DescribeClusters does not report a ClusterNamespaceArn for {cluster_id}",
                          hint="migrator needs it to prove which cluster a connection reached")
    return arn.rsplit(":", 1)[-1].split("/")[-1]


def answered_namespace(ctx: "PhaseContext", p: Plan) -> str:
    """SELECT current_namespace through the production name, logged in as the new cluster's user."""
    settings = ctx.config.settings
    conn = sessions.connect(settings, recorded.clients(ctx), p.source_id, where="target",
                            conn=sessions.target_connection(settings, p.source_id))
    try:
        cursor = conn.cursor()
        cursor.execute("select current_namespace")
        row = cursor.fetchone()
    finally:
        conn.close()
    return str(row[0]).strip() if row else ""


def await_new_cluster_behind_name(ctx: "PhaseContext", p: Plan, expected: str) -> str:
    """After the swap the old name can stay cached and still reach the OLD cluster: poll until the
    database behind the production name reports the new cluster's namespace (as DescribeClusters
    gives it), with a deadline; an answer from any other cluster never validates."""
    described = namespace_of(ctx, p.source_id)
    if described != expected:
        raise ValidationMismatch(f"after cutover, DescribeClusters shows {p.source_id} with namespace {described}, "
                                 f"not the new cluster's {expected}",
                                 hint="another cluster holds the production name; `migrator rollback`")
    seen: dict[str, str] = {}

    def reached() -> str | None:
        try:
            found = answered_namespace(ctx, p)
        except MigratorError as exc:
            seen["last"] = f"no answer ({exc.message})"
            return None
        seen["last"] = f"namespace {found}"
        return found if found == expected else None

    try:
        found = wait_until(reached, what=f"{p.source_id} to answer from the new cluster", backoff=aws.POLL,
                           timeout=wait_seconds("dns"), should_stop=ctx.should_stop)
    except TransientError:
        raise ValidationMismatch(f"after cutover, connections to {p.source_id} still do not reach the new cluster "
                                 f"(namespace {expected}) after {wait_seconds('dns'):.0f}s; last: {seen.get('last')} "
                                 "(the old name may still be cached and reach the old cluster)",
                                 hint="re-run `migrator run` to check again, or `migrator rollback`") from None
    ctx.store.add_event(ctx.migration, "migration", "validation",
                        {"cluster_id": p.source_id, "what": "reached the new cluster", "namespace": found},
                        state=ctx.migration.phase)
    return found


def _retire_source(ctx: "PhaseContext", p: Plan) -> None:
    """Tag the source as retired by this migration before it is renamed away: decommission deletes
    the old cluster only when it carries this tag AND the store recorded the rename (see ownership)."""
    client_set = recorded.clients(ctx)
    name = ctx.migration.name

    def tagged() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, p.source_id)
        return {"cluster_id": p.source_id} if aws.tag_value(cluster, aws.RETIRED_TAG) == name else None

    def send() -> dict[str, Any]:
        aws.tag_cluster(client_set, p.source_id, {aws.RETIRED_TAG: name})
        return {"cluster_id": p.source_id}

    if recorded.recorded(ctx, RETIRE_KEY) is None and tagged() is not None:
        recorded.remember(ctx, RETIRE_KEY, {"cluster_id": p.source_id, "already_tagged": True})
        return
    recorded.once(ctx, RETIRE_KEY, {"ClusterIdentifier": p.source_id, "Tag": {aws.RETIRED_TAG: name}}, send, tagged)


def _retired_record(ctx: "PhaseContext", p: Plan) -> dict[str, Any] | None:
    """The store's proof that this migration retired the cluster now named ``p.old_name``: the
    source was tagged and then renamed to that name, both recorded."""
    renamed = recorded.recorded(ctx, swap_keys(ctx.store, ctx.migration).rename_source)
    if recorded.recorded(ctx, RETIRE_KEY) is None or renamed is None or renamed.get("to") != p.old_name:
        return None
    return {"cluster_id": p.old_name}


def decommission(ctx: "PhaseContext") -> dict[str, Any]:
    """Final snapshot of the old source, then delete it (the gate made an operator confirm).
    Only a cluster this migration retired (recorded rename AND the retired tag) is ever deleted."""
    p = plan(ctx)
    client_set = recorded.clients(ctx)
    name = ctx.migration.name
    request = {"ClusterIdentifier": p.old_name, "SkipFinalClusterSnapshot": False,
               "FinalClusterSnapshotIdentifier": p.final_snapshot}

    def send() -> dict[str, Any]:
        wait_ready(ctx, p.old_name, f"old source {p.old_name} must be available for its final snapshot")
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
        # One last stray-write check just before the delete: refused (exit 7) unless accepted.
        stray_writes.last_check(ctx)
    done = recorded.once(ctx, DECOMMISSION_KEY, request, send, took_effect)
    aws.wait_for_cluster(client_set, p.old_name, lambda c: c is None, what=f"deletion of {p.old_name}",
                         should_stop=ctx.should_stop, timeout=wait_seconds("delete"))
    return done


# -- rollback -------------------------------------------------------------------------------

def _disable_copy_if_on(ctx: "PhaseContext", key: str, cluster_id: str) -> None:
    """Copy re-enabled on the new cluster at the end of cutover must be off again before it is renamed."""
    client_set = recorded.clients(ctx)
    if (recorded.recorded(ctx, key) is None
            and aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id)) is None):
        return
    recorded.once(ctx, key, {"ClusterIdentifier": cluster_id},
                  send=lambda: (aws.call(f"DisableSnapshotCopy {cluster_id}", lambda: client_set.client("redshift")
                                         .disable_snapshot_copy(ClusterIdentifier=cluster_id)), {})[1],
                  took_effect=lambda: {} if aws.snapshot_copy_of(aws.require_cluster(client_set, cluster_id)) is None
                  else None)


def rollback_refusal(ctx: "PhaseContext") -> MigratorError:
    """Why the migration cannot be rolled back from where it stands (the machine has no move)."""
    name, phase = ctx.migration.name, ctx.migration.phase
    if ctx.store.get_action(ctx.migration, DECOMMISSION_KEY) is not None:
        kept = recorded.recorded(ctx, PLAN_KEY) or {}
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
    client_set = recorded.clients(ctx)
    done: dict[str, Any] = {}
    if recorded.recorded(ctx, PLAN_KEY) is not None:
        p = plan(ctx)
        old_exists = aws.describe_cluster(client_set, p.old_name) is not None
        if old_exists:
            # A stop asked for (SIGTERM) between the renames back waits until the name is held again.
            with interrupt.deferred():
                # The target may already hold the original name: give it back its own first.
                if aws.describe_cluster(client_set, p.source_id) is not None:
                    _disable_copy_if_on(ctx, "rollback:disable_copy", p.source_id)
                    _rename(ctx, "rollback:rename_target_back", p.source_id, p.target_id)
                _rename(ctx, "rollback:rename_source_back", p.old_name, p.source_id, wait_after=False)
            # The rename back restarts it: no reboot of its own.
            wait_ready(ctx, p.source_id, f"{p.source_id} to come back after its rename from {p.old_name}")
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
    client_set = recorded.clients(ctx)
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
        wait_ready(ctx, target, f"new cluster {target} must be available to be deleted")
        aws.delete_owned_cluster(client_set, target, name, recorded=creation_record(ctx),
                                 final_snapshot=snapshot, skip_final_snapshot=not snapshot)
        return outcome

    def took_effect() -> dict[str, Any] | None:
        cluster = aws.describe_cluster(client_set, target)
        return outcome if cluster is None or cluster.get("ClusterStatus") in _BEING_DELETED else None

    return recorded.once(ctx, DELETE_TARGET_KEY, request, send, took_effect)
