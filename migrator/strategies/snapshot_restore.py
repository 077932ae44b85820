"""`strategy = "snapshot-restore"` (RA3 only): manual snapshot of the source, restored into
a new cluster with the KMS key, validated against the baseline taken right before the
snapshot (writes frozen), then the shared cutover and decommission."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.config import Settings
from migrator.engine.registry import Registry
from migrator.engine.gates import pass_gate
from migrator.errors import ConfigError, MigratorError, PreflightFailed, RemoteError
from migrator.retry import wait_until
from migrator.names import table_key
from migrator.strategies import common, cutover, encryption, preflight_checks, recorded, sessions, stray_writes, window
from migrator.warehouse.errors import is_auth_failure
from migrator.strategies.mirror import mirror_logging, mirror_source, mirror_usage_limits, rename_notes

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

PREFLIGHT_KEY = "preflight"
SNAPSHOT_KEY = "create_snapshot"
RESTORE_KEY = "restore_from_snapshot"
WAIT_TIMEOUT_SECONDS = 24 * 3600.0

REGISTRY = Registry()


def registry() -> Registry:
    """This route's phase actions, with the shared baseline its YAML names."""
    return common.SHARED_PHASES.extended(REGISTRY)


def snapshot_id(migration_name: str, cluster_id: str) -> str:
    """A valid manual-snapshot identifier named for the migration (letters, digits, single hyphens)."""
    raw = f"migrator-{migration_name}-{cluster_id}".lower()
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw)).strip("-")
    return cleaned[:255].rstrip("-")


@dataclass(frozen=True)
class Wanted:
    """What preflight resolved (key alias → ARN) and kept in the store for the later phases."""

    source_id: str
    target_id: str
    encrypted: bool
    kms_key_arn: str | None = None
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Wanted":
        return cls(str(data["source_id"]), str(data["target_id"]), bool(data["encrypted"]), data.get("kms_key_arn"),
                   data.get("source"))


def wanted(ctx: "PhaseContext") -> Wanted:
    found = recorded.recorded(ctx, PREFLIGHT_KEY)
    assert found is not None, "preflight result missing"
    return Wanted.from_dict(found)


def _ours(ctx: "PhaseContext") -> bool:
    """Whether the existing target is the one this migration restored (a resumed run)."""
    return recorded.recorded(ctx, RESTORE_KEY) is not None or ctx.store.get_action(ctx.migration, RESTORE_KEY) \
        is not None


@REGISTRY.action("preflight")
def preflight(ctx: "PhaseContext") -> str:
    settings = ctx.config.settings
    client_set = recorded.clients(ctx)
    region = settings.migration.region
    source_id, target_id = settings.source.cluster_id, settings.target.cluster_id
    encrypt = settings.target.encryption == "kms"
    problems: list[str] = []
    key_arn_wanted: str | None = None
    source_summary: dict[str, Any] | None = None
    notes: list[str] = []
    key_usable = True
    if encrypt:
        if not settings.target.kms_key_id:
            problems.append("target.kms_key_id: snapshot-restore needs the KMS key to restore into")
            key_usable = False
        else:
            key, key_problems = aws.resolve_kms_key(client_set, settings.target.kms_key_id, region)
            problems += key_problems
            key_usable = key is not None and not key_problems
            if key is not None:
                key_arn_wanted = key.arn
    source, source_problems = preflight_checks.source_problems(ctx, source_id)
    if source is not None:
        encrypted, key_arn = aws.encryption_of(source)
        if key_usable and encrypted == encrypt and (not encrypt or key_arn == key_arn_wanted):
            how = f"encrypted with {key_arn}" if encrypt else "not encrypted"
            ctx.facts["detail"] = {"reason": f"cluster {source_id} is already {how}; nothing to do"}
            return "already_done"
        node_type = str(source.get("NodeType", ""))
        if not node_type.startswith(aws.RA3_PREFIX):
            problems.append(f"cluster {source_id} uses node type {node_type}: restoring a snapshot into a "
                            "different KMS key works only for RA3 node types; use strategy 'modify' or "
                            "'unload-copy'")
        source_summary = recorded.cluster_summary(source)
        mirror = mirror_source(source, settings, restore=True)
        problems += list(mirror.problems)
        notes = list(mirror.overridden) + list(mirror.reported) + rename_notes(client_set, source)
    if target_id and aws.describe_cluster(client_set, target_id) is not None and not _ours(ctx):
        problems.append(f"target cluster {target_id} already exists and was not made by this migration")
    preflight_checks.fail_preflight(source_problems + problems)
    want = Wanted(source_id, target_id, encrypt, key_arn_wanted, source_summary)
    recorded.remember(ctx, PREFLIGHT_KEY, want.to_dict())
    ctx.store.add_event(ctx.migration, "migration", "not_mirrored", {"notes": notes}, state=ctx.migration.phase)
    ctx.facts["detail"] = {"kms_key_arn": want.kms_key_arn, "source": want.source, "notes": notes}
    return "preflight_passed"


@REGISTRY.action("await_write_freeze")
def await_write_freeze(ctx: "PhaseContext") -> str:
    ctx.facts["detail"] = common.await_write_freeze(ctx, ctx.config.settings.source.cluster_id)
    return "writes_frozen"


def _describe_snapshot(ctx: "PhaseContext", snap: str) -> dict[str, Any] | None:
    try:
        found = recorded.clients(ctx).client("redshift").describe_cluster_snapshots(SnapshotIdentifier=snap)
    except Exception as exc:  # ClientError; classified below
        if aws.error_code(exc) in ("ClusterSnapshotNotFound", "ClusterSnapshotNotFoundFault"):
            return None
        raise RemoteError(f"DescribeClusterSnapshots {snap} failed: {aws.describe(exc)}") from None
    snaps = found.get("Snapshots") or []
    return snaps[0] if snaps else None


@REGISTRY.action("take_snapshot")
def take_snapshot(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    snap = snapshot_id(ctx.migration.name, want.source_id)
    request = {"SnapshotIdentifier": snap, "ClusterIdentifier": want.source_id,
               "Tags": [{"Key": "migrator:migration", "Value": ctx.migration.name}]}
    client_set = recorded.clients(ctx)

    def send() -> dict[str, Any]:
        aws.call(f"CreateClusterSnapshot {snap}",
                 lambda: client_set.client("redshift").create_cluster_snapshot(**request))
        return {"snapshot_id": snap}

    def took_effect() -> dict[str, Any] | None:
        # Ours: a snapshot of the source carrying this migration's tag (sent with the request).
        found = _describe_snapshot(ctx, snap)
        if found is None or found.get("ClusterIdentifier") != want.source_id \
                or aws.tag_value(found, aws.OWNER_TAG) != ctx.migration.name:
            return None
        return {"snapshot_id": snap}

    recorded.once(ctx, SNAPSHOT_KEY, request, send, took_effect)

    def ready() -> dict[str, Any] | None:
        found = _describe_snapshot(ctx, snap)
        if found is None:
            raise RemoteError(f"snapshot {snap} disappeared while it was being made")
        status = str(found.get("Status", "")).lower()
        if status == "failed":
            raise RemoteError(f"snapshot {snap} failed", hint="check the cluster's events, then re-run")
        return found if status == "available" else None

    wait_until(ready, what=f"snapshot {snap}", timeout=WAIT_TIMEOUT_SECONDS, backoff=aws.POLL,
               should_stop=ctx.should_stop)
    ctx.facts["detail"] = {"snapshot_id": snap}
    return "snapshot_ready"


def restore_request(want: Wanted, source: dict[str, Any], snap: str, settings: Settings) -> dict[str, Any]:
    """Restore into the target mirroring the source (mirror_source; tags and logging after)."""
    request: dict[str, Any] = {"SnapshotIdentifier": snap, "ClusterIdentifier": want.target_id,
                               **mirror_source(source, settings, restore=True).request}
    if want.encrypted:
        # An unencrypted snapshot restores into KMS only with both (RestoreFromClusterSnapshot
        # Encrypted/KmsKeyId); a key alone is refused.
        request["Encrypted"] = True
        if want.kms_key_arn:
            request["KmsKeyId"] = want.kms_key_arn
    return request


#: AWS's clock and this machine's may disagree; a cluster created this long before the restore was
#: recorded still counts as that restore's.
CLOCK_SKEW = timedelta(minutes=5)


def _created_since_recorded(ctx: "PhaseContext", cluster: dict[str, Any], key: str) -> bool:
    record = ctx.store.get_action(ctx.migration, key)
    created = cluster.get("ClusterCreateTime")
    if record is None or not isinstance(created, datetime):
        return False
    started = record.started_at if record.started_at.tzinfo else record.started_at.replace(tzinfo=UTC)
    return created >= started - CLOCK_SKEW


@REGISTRY.action("restore_snapshot")
def restore_snapshot(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    client_set = recorded.clients(ctx)
    snap = snapshot_id(ctx.migration.name, want.source_id)
    target_id = want.target_id

    def send() -> dict[str, Any]:
        answer = aws.call(f"RestoreFromClusterSnapshot {snap} → {target_id}",
                          lambda: client_set.client("redshift").restore_from_cluster_snapshot(**request))
        return {"cluster": recorded.cluster_summary(answer.get("Cluster"))}

    def took_effect() -> dict[str, Any] | None:
        # A restore carries no tags (they follow it): ours is a cluster of that name made after
        # the restore was recorded, or already tagged as ours by an earlier run.
        cluster = aws.describe_cluster(client_set, target_id)
        if cluster is None:
            return None
        if aws.tag_value(cluster, aws.OWNER_TAG) != ctx.migration.name \
                and not _created_since_recorded(ctx, cluster, RESTORE_KEY):
            return None
        return {"cluster": recorded.cluster_summary(cluster)}

    existing = ctx.store.get_action(ctx.migration, RESTORE_KEY)
    if existing is not None:
        request = dict(existing.request)
    else:
        request = restore_request(want, aws.require_cluster(client_set, want.source_id), snap, ctx.config.settings)
    recorded.once(ctx, RESTORE_KEY, request, send, took_effect)
    # Restore takes no Tags: mark the new cluster as this migration's (and give it the source's
    # tags) right after; CreateTags overwrites, so a resumed run simply does it again.
    source_tags = (aws.describe_cluster(client_set, want.source_id) or {}).get("Tags") or []
    aws.tag_cluster(client_set, target_id, {t["Key"]: t["Value"]
                                            for t in aws.migration_tags(source_tags, ctx.migration.name)})

    def on_poll(cluster: dict[str, Any] | None) -> None:
        status = (cluster or {}).get("ClusterStatus")
        if status != last.get("status"):
            last["status"] = status
            common.progress_event(ctx, f"cluster:{target_id}", {"cluster_status": status, "restoring": True})

    last: dict[str, Any] = {}
    aws.wait_for_cluster(client_set, target_id, aws.is_available, what=f"restore of {target_id}",
                         timeout=WAIT_TIMEOUT_SECONDS, should_stop=ctx.should_stop, on_poll=on_poll)
    recorded.remember(ctx, "restore:logging", mirror_logging(client_set, want.source_id, target_id))
    recorded.remember(ctx, "restore:usage_limits", mirror_usage_limits(client_set, want.source_id, target_id))
    encryption.check_new_cluster_encryption(ctx, "after the restore", target_id)
    ctx.facts["detail"] = {"target_id": target_id, "snapshot_id": snap}
    return "restored"


@REGISTRY.action("validate")
def validate(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    settings = ctx.config.settings
    encryption.check_new_cluster_encryption(ctx, "before validation", want.target_id)
    try:
        found = common.check_against_baseline(
            ctx, want.target_id, "restored cluster against the baseline",
            conn=sessions.target_connection(settings, want.target_id),
            hint="writes reached the source after the baseline; roll back and re-run")
    except MigratorError as exc:
        if not is_auth_failure(exc):
            raise
        # Said before anything else: the restored cluster is not the one the password was made for.
        raise ConfigError(f"target: the restored cluster {want.target_id} refused the login ({exc.one_line()}); a "
                          "cluster restored from a snapshot keeps the snapshot's master user and password, i.e. the "
                          f"source's ({settings.source.cluster_id})",
                          hint="give target.password_env (or secret_arn) the source's master password, or leave the "
                               "target's credentials out to log in as the source's user") from None
    ctx.facts["detail"] = {"user_tables": found.user_tables, "tables": len(found.rows)}
    return "validated"


def nothing_written_since_snapshot(ctx: "PhaseContext") -> None:
    """A snapshot cannot be caught up: any write the source's logs show since the baseline (taken
    with writes frozen, just before the snapshot) would be lost by the swap, so the cutover is refused."""
    from migrator.warehouse.connection import Session

    taken = ctx.store.get_action(ctx.migration, common.BASELINE_KEY)
    if taken is None:
        raise RemoteError("no baseline was recorded before the snapshot", hint="internal order problem")
    settings = ctx.config.settings
    since = taken.started_at - window.CLOCK_SLACK
    conn = sessions.connect(settings, recorded.clients(ctx), settings.source.cluster_id)
    try:
        written = window.written_since(Session(conn), since, settings.tables.include, settings.tables.exclude)
    finally:
        conn.close()
    if written:
        names = ", ".join(sorted(table_key(*pair) for pair in written)[:10])
        ctx.store.add_event(ctx.migration, "migration", "written_since_snapshot",
                            {"tables": sorted(table_key(*pair) for pair in written)}, state=ctx.migration.phase)
        raise PreflightFailed(f"cutover refused: {len(written)} table(s) of {settings.source.cluster_id} were "
                              f"written after the snapshot ({names}); the restored cluster does not have those "
                              "writes", hint="`migrator rollback --delete-target --confirm`, then run again with "
                                             "writes stopped (or use unload-copy, which catches up)")


@REGISTRY.action("await_cutover_approval")
def await_cutover_approval(ctx: "PhaseContext") -> str:
    """The cutover gate, which first checks that the snapshot still holds every write."""
    nothing_written_since_snapshot(ctx)
    return pass_gate(ctx)


@REGISTRY.action("cutover")
def do_cutover(ctx: "PhaseContext") -> str:
    ctx.facts["detail"] = cutover.cutover(ctx, before_rename=lambda: nothing_written_since_snapshot(ctx))
    return "cut_over"


REGISTRY.action(stray_writes.ACTION)(stray_writes.watch_then_await_approval)


@REGISTRY.action("decommission")
def do_decommission(ctx: "PhaseContext") -> str:
    ctx.facts["detail"] = cutover.decommission(ctx)
    return "decommissioned"


# -- rollback (the runner runs it under the run lease) ----------------------------------------

undo = cutover.undo
rollback_refusal = cutover.rollback_refusal
