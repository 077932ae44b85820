"""`strategy = "modify"`: in-place KMS encryption (or decryption) with ModifyCluster.

Redshift does the copy itself; the cluster is read-only (status `resizing`) until it
finishes. A client cannot resume that operation, only re-attach and keep polling, so
the modify request is recorded before it is sent and a resumed run never sends it
again: it describes the cluster and waits on what is already running.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.engine.gates import pass_gate
from migrator.engine.registry import Registry
from migrator.errors import MigratorError, RemoteError, SecurityError, UsageError
from migrator.strategies import common, preflight_checks, recorded, sessions

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

PREFLIGHT_KEY = "preflight"
MODIFY_KEY = "modify_cluster"
PLAN_KEY = "modify:plan"
#: A rough, deliberately modest rate for Redshift's own copy to new storage; the real figure comes
#: from DescribeResize once the change runs (status shows it).
ASSUMED_MB_PER_SECOND_PER_NODE = 20.0
#: Node types Redshift no longer lets you change in place (retired generations).
RETIRED_NODE_PREFIXES = ("dc1.", "ds1.")
RESIZE_BEFORE_KEY = "modify:resize_before"
WAIT_TIMEOUT_SECONDS = 72 * 3600.0
#: ResizeProgressMessage.Status as the API reference documents it; nothing else is understood.
RESIZE_STATUSES = frozenset({"NONE", "IN_PROGRESS", "FAILED", "SUCCEEDED", "CANCELLING"})
#: How long the cluster may stay `available` and unchanged after ModifyCluster before migrator says
#: the change never started (AWS flips the status within seconds; a resize takes hours, this does not).
START_GRACE_SECONDS = 30 * 60.0

REGISTRY = Registry()


def registry() -> Registry:
    """This route's phase actions, with the shared baseline its YAML names."""
    return common.SHARED_PHASES.extended(REGISTRY)


# -- what was asked for ---------------------------------------------------------------------

@dataclass(frozen=True)
class Wanted:
    """The end state, as preflight resolved it (key alias → ARN); kept in the store."""

    cluster_id: str
    encrypted: bool
    kms_key_arn: str | None = None
    kms_key_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Wanted":
        return cls(str(data["cluster_id"]), bool(data["encrypted"]), data.get("kms_key_arn"), data.get("kms_key_ref"))


def wanted(ctx: "PhaseContext") -> Wanted:
    found = recorded.recorded(ctx, PREFLIGHT_KEY)
    assert found is not None, "preflight result missing"
    return Wanted.from_dict(found)


def matches(cluster: dict[str, Any] | None, want: Wanted) -> bool:
    if cluster is None:
        return False
    encrypted, key = aws.encryption_of(cluster)
    if not want.encrypted:
        return not encrypted
    return encrypted and (want.kms_key_arn is None or key == want.kms_key_arn)


def check(ctx: "PhaseContext") -> tuple[list[str], Wanted, bool, dict[str, Any] | None]:
    """Read-only checks: (problems, wanted end state, whether the named key is usable, cluster)."""
    settings = ctx.config.settings
    client_set = recorded.clients(ctx)
    cluster_id = settings.source.cluster_id
    region = settings.migration.region
    encrypt = settings.target.encryption == "kms"
    key_arn: str | None = None
    key_usable = True
    cluster, problems = preflight_checks.source_problems(ctx, cluster_id)
    if cluster is not None:
        node_type = str(cluster.get("NodeType", ""))
        if node_type.startswith(RETIRED_NODE_PREFIXES):
            problems.append(f"cluster {cluster_id} runs retired node type {node_type}; resize it to a current "
                            "node type first")
        if cluster.get("HsmStatus") and encrypt:
            problems.append(f"cluster {cluster_id} is HSM-encrypted; moving from HSM to KMS needs "
                            "strategy 'unload-copy'")
        pending = cluster.get("PendingModifiedValues") or {}
        if pending:
            problems.append(f"cluster {cluster_id} has pending modifications {sorted(pending)}; let them finish")
    if encrypt and settings.target.kms_key_id:
        key, key_problems = aws.resolve_kms_key(client_set, settings.target.kms_key_id, region)
        problems += key_problems
        if key is not None and not key_problems:
            key_arn = key.arn
        else:
            key_usable = False
    return problems, Wanted(cluster_id, encrypt, key_arn, settings.target.kms_key_id), key_usable, cluster


# -- phases ---------------------------------------------------------------------------------

@REGISTRY.action("preflight")
def preflight(ctx: "PhaseContext") -> str:
    problems, want, key_usable, cluster = check(ctx)
    # Already there (with a usable key when one is named): the other checks no longer matter.
    if cluster is not None and key_usable and matches(cluster, want):
        how = ("encrypted with " + (want.kms_key_arn or "a KMS key")) if want.encrypted else "not encrypted"
        ctx.facts["detail"] = {"reason": f"cluster {want.cluster_id} is already {how}; nothing to do"}
        return "already_done"
    preflight_checks.fail_preflight(problems)
    recorded.remember(ctx, PREFLIGHT_KEY, {**want.to_dict(), "before": recorded.cluster_summary(cluster)})
    ctx.facts["detail"] = {"cluster": recorded.cluster_summary(cluster), "kms_key_arn": want.kms_key_arn}
    return "preflight_passed"


@dataclass(frozen=True)
class ModifyPlan:
    """What passing the `modify` gate will do, shown at the gate and kept in the store."""

    request: dict[str, Any]
    snapshot_copy_on: bool
    data_mb: int
    nodes: int
    estimated_seconds: float

    @property
    def summary(self) -> str:
        encryption = (f"Encrypted=true KmsKeyId={self.request.get('KmsKeyId', 'the default Redshift key')}"
                      if self.request["Encrypted"] else "Encrypted=false")
        copy = "disable cross-region snapshot copy, " if self.snapshot_copy_on else ""
        return (f"will {copy}send ModifyCluster {self.request['ClusterIdentifier']} {encryption}; the cluster is "
                f"read-only until Redshift finishes, estimated ~{_minutes(self.estimated_seconds)} for "
                f"{self.data_mb} MB on {self.nodes} node(s)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModifyPlan":
        return cls(dict(data["request"]), bool(data["snapshot_copy_on"]), int(data["data_mb"]), int(data["nodes"]),
                   float(data["estimated_seconds"]))


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(1, round(seconds / 60))} min"


def make_plan(ctx: "PhaseContext", want: Wanted) -> ModifyPlan:
    from migrator.warehouse.connection import Session
    from migrator.warehouse.inventory import read_inventory

    cluster = aws.require_cluster(recorded.clients(ctx), want.cluster_id)
    nodes = int(cluster.get("NumberOfNodes") or 1)
    conn = sessions.connect(ctx.config.settings, recorded.clients(ctx), want.cluster_id)
    try:
        conn.autocommit = True
        data_mb = sum(t.size_mb for t in read_inventory(Session(conn)))
    finally:
        conn.close()
    seconds = data_mb / (ASSUMED_MB_PER_SECOND_PER_NODE * nodes)
    return ModifyPlan(modify_request(want), aws.snapshot_copy_of(cluster) is not None, data_mb, nodes, seconds)


@REGISTRY.action("await_modify_approval")
def await_modify_approval(ctx: "PhaseContext") -> str:
    """The gate before production changes: the plan is fixed once and shown until approved."""
    kept = recorded.recorded(ctx, PLAN_KEY)
    plan = ModifyPlan.from_dict(kept) if kept is not None else \
        ModifyPlan.from_dict(recorded.remember(ctx, PLAN_KEY, make_plan(ctx, wanted(ctx)).to_dict()))
    return pass_gate(ctx, preview=plan.to_dict(), summary=plan.summary)


@REGISTRY.action("disable_snapshot_copy")
def disable_snapshot_copy(ctx: "PhaseContext") -> str:
    record = common.disable_snapshot_copy(ctx, ctx.config.settings.source.cluster_id)
    ctx.facts["detail"] = {"snapshot_copy": record}
    return "snapshot_copy_off"


def modify_request(want: Wanted) -> dict[str, Any]:
    request: dict[str, Any] = {"ClusterIdentifier": want.cluster_id, "Encrypted": want.encrypted}
    if want.encrypted and want.kms_key_arn:
        request["KmsKeyId"] = want.kms_key_arn
    return request


# -- which resize is ours --------------------------------------------------------------------

#: Fields of a finished resize that never change afterwards: a resize showing the same ones as
#: before ModifyCluster was sent is that old resize, not the one migrator started.
_FINGERPRINT = ("Status", "TargetEncryptionType", "ResizeType", "ElapsedTimeInSeconds", "Message",
                "TotalResizeDataInMegaBytes", "TargetNodeType", "TargetNumberOfNodes")


def resize_fingerprint(resize: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if resize is None else {k: resize.get(k) for k in _FINGERPRINT}


def target_encryption_type(want: Wanted) -> str:
    """DescribeResize's TargetEncryptionType for the change migrator asked for."""
    return "KMS" if want.encrypted else "NONE"


@dataclass(frozen=True)
class ResizeView:
    """A DescribeResize answer judged against what was there before ModifyCluster was sent."""

    resize: dict[str, Any] | None
    ours: bool

    @property
    def status(self) -> str | None:
        return str(self.resize.get("Status", "")).upper() if self.ours and self.resize else None


def judge_resize(resize: dict[str, Any] | None, before: dict[str, Any] | None, *, seen_ours: bool) -> ResizeView:
    """Ours when it differs from the one recorded before sending (or there was none), or once a
    resize of ours has been seen running in this run (a finished one can then look like an old one)."""
    if resize is None:
        return ResizeView(None, False)
    if seen_ours or before is None or resize_fingerprint(resize) != before:
        return ResizeView(resize, True)
    return ResizeView(resize, False)


def resize_outcome(cluster: dict[str, Any] | None, view: ResizeView, want: Wanted) -> str:
    """"done", "in_progress" or raises: what the cluster and our resize (only ours) say about the change."""
    cluster_id = want.cluster_id
    if cluster is None:
        raise RemoteError(f"cluster {cluster_id} disappeared during its encryption change")
    status = view.status
    if status is not None and status not in RESIZE_STATUSES:
        raise RemoteError(f"DescribeResize for {cluster_id} reports status {status!r}, which the Redshift API does "
                          f"not document (known: {', '.join(sorted(RESIZE_STATUSES))})",
                          hint="check the cluster in the console; re-run `migrator run` to re-attach")
    if view.ours and view.resize and view.resize.get("TargetEncryptionType") not in (None, "",
                                                                                   target_encryption_type(want)):
        raise SecurityError(f"the resize running on {cluster_id} targets encryption "
                            f"{view.resize.get('TargetEncryptionType')}, not {target_encryption_type(want)} as asked",
                            hint="someone changed the cluster's encryption meanwhile; check `migrator history` and "
                                 "the cluster's events")
    if aws.is_available(cluster) and matches(cluster, want):
        return "done"
    if aws.is_available(cluster) and status == "FAILED":
        message = str((view.resize or {}).get("Message") or "").strip()
        raise RemoteError(f"the encryption change of {cluster_id} failed (DescribeResize status FAILED"
                          + (f": {message}" if message else "") + "); the cluster is unchanged",
                          hint="see the cluster's events; fix the cause and run a new migration")
    if aws.is_available(cluster) and status == "SUCCEEDED":
        encrypted, key = aws.encryption_of(cluster)
        raise SecurityError(f"the encryption change of {cluster_id} succeeded but the cluster reports "
                            f"Encrypted={str(encrypted).lower()} KmsKeyId={key or '(none)'}, not "
                            f"Encrypted={str(want.encrypted).lower()} KmsKeyId={want.kms_key_arn or '(any)'}",
                            hint="check the cluster in the console and `migrator history`")
    return "in_progress"


@REGISTRY.action("modify_cluster")
def modify_cluster(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    client_set = recorded.clients(ctx)
    request = modify_request(want)
    if ctx.store.get_action(ctx.migration, MODIFY_KEY) is None:
        # DescribeResize answers the LAST resize, maybe an old one: remember it, so progress and
        # failure are read only from the resize this change starts.
        recorded.remember(ctx, RESIZE_BEFORE_KEY,
                          {"resize": resize_fingerprint(aws.describe_resize(client_set, want.cluster_id))})

    def send() -> dict[str, Any]:
        answer = aws.call(f"ModifyCluster {want.cluster_id}",
                          lambda: client_set.client("redshift").modify_cluster(**request))
        return {"cluster": recorded.cluster_summary(answer.get("Cluster"))}

    def took_effect() -> dict[str, Any] | None:
        # Either the operation is running (resizing) or it already finished: never send it twice.
        cluster = aws.describe_cluster(client_set, want.cluster_id)
        pending = (cluster or {}).get("PendingModifiedValues") or {}
        if cluster is not None and (cluster.get("ClusterStatus") == "resizing" or "EncryptionType" in pending
                                    or matches(cluster, want)):
            return {"cluster": recorded.cluster_summary(cluster)}
        return None

    response = recorded.once(ctx, MODIFY_KEY, request, send, took_effect)
    ctx.facts["detail"] = {"request": request, "reattached": bool(response.get("reattached"))}
    return "modify_sent"


@REGISTRY.action("wait_for_modify")
def wait_for_modify(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    client_set = recorded.clients(ctx)
    cluster_id = want.cluster_id
    before = (recorded.recorded(ctx, RESIZE_BEFORE_KEY) or {}).get("resize")
    last: dict[str, Any] = {}
    seen = {"ours": False}
    started = time.monotonic()

    def check() -> tuple[str] | None:
        cluster = aws.describe_cluster(client_set, cluster_id)
        view = judge_resize(aws.describe_resize(client_set, cluster_id) if cluster is not None else None,
                            before, seen_ours=seen["ours"])
        if view.ours and view.status == "IN_PROGRESS":
            seen["ours"] = True
        figures = common.resize_figures(view.resize if view.ours else None, cluster)
        shown = {k: figures.get(k) for k in ("cluster_status", "percent", "tables_done", "resize_status")}
        if shown != last:  # one row per change, not per poll
            last.clear()
            last.update(shown)
            common.progress_event(ctx, f"cluster:{cluster_id}", figures)
        outcome = resize_outcome(cluster, view, want)
        if outcome == "done":
            return (outcome,)
        if aws.is_available(cluster) and not view.ours and time.monotonic() - started > START_GRACE_SECONDS:
            raise RemoteError(f"ModifyCluster {cluster_id} was sent but after {START_GRACE_SECONDS / 60:.0f} min "
                              "the cluster is still available and unchanged, with no new resize",
                              hint="check the cluster's events; run a new migration to send the change again")
        return None

    from migrator.retry import wait_until

    wait_until(check, what=f"the encryption change of {cluster_id}", timeout=WAIT_TIMEOUT_SECONDS,
               backoff=aws.POLL, should_stop=ctx.should_stop)
    return "modify_finished"


@REGISTRY.action("verify")
def verify(ctx: "PhaseContext") -> str:
    want = wanted(ctx)
    cluster = aws.require_cluster(recorded.clients(ctx), want.cluster_id)
    if not matches(cluster, want):
        encrypted, key = aws.encryption_of(cluster)
        raise SecurityError(f"cluster {want.cluster_id} reports Encrypted={encrypted} KmsKeyId={key}, not "
                            f"what was asked (Encrypted={want.encrypted} KmsKeyId={want.kms_key_arn})",
                            hint="check the cluster in the console and `migrator history`")
    found = common.check_against_baseline(ctx, want.cluster_id, "after the encryption change")
    ctx.facts["detail"] = {"cluster": recorded.cluster_summary(cluster), "user_tables": found.user_tables}
    return "verified"


@REGISTRY.action("restore_snapshot_copy")
def restore_snapshot_copy(ctx: "PhaseContext") -> str:
    result = common.restore_snapshot_copy(ctx, ctx.config.settings.source.cluster_id)
    ctx.facts["detail"] = {"snapshot_copy": result}
    return "snapshot_copy_restored"


def rollback_refusal(ctx: "PhaseContext") -> MigratorError:
    return UsageError("a 'modify' migration cannot be rolled back by migrator",
                      hint="to undo an encryption change, run a new 'modify' migration with the old setting")
