"""Remote calls recorded in the store: made at most once per migration, re-attached on resume,
and the AWS clients they go through (one set per run)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws.clients import AwsClients
from migrator.config import Settings
from migrator.errors import MigratorError

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger(__name__)


def clients_for(settings: Settings) -> AwsClients:
    return AwsClients(settings.migration.region, settings.migration.aws_endpoint_url)


@lru_cache(maxsize=8)
def _clients(region: str, endpoint_url: str | None) -> AwsClients:
    return AwsClients(region, endpoint_url)


def clients(ctx: "PhaseContext") -> AwsClients:
    """One AwsClients (and so one boto3 client per service) for the whole run."""
    migration = ctx.config.settings.migration
    return _clients(migration.region, migration.aws_endpoint_url)


def once(ctx: "PhaseContext", key: str, request: Mapping[str, Any], send: Callable[[], Mapping[str, Any]],
         took_effect: Callable[[], Mapping[str, Any] | None]) -> dict[str, Any]:
    """Make a remote call at most once per migration.

    The request is recorded before the call and the response after it. A record left
    ``pending`` by a crash means the call may or may not have reached AWS: ``took_effect``
    looks (describe calls) and, when it did, the action is re-attached instead of re-sent.

    A call that fails is looked at the same way before its error counts: AWS may have made the
    change and lost only the answer, and botocore's automatic retry of that request then meets
    the change itself (ClusterAlreadyExists, ClusterNotFound after a rename, InvalidClusterState
    while it reboots or deletes). ``took_effect`` must therefore recognise only this migration's
    own effect (its tag, its names), never a look-alike somebody else made.
    """
    store, migration = ctx.store, ctx.migration
    found = store.get_action(migration, key)
    if found is not None and found.status == "done":
        return dict(found.response or {})
    if found is not None:
        seen = took_effect()
        if seen is not None:
            log.info("re-attached to %s (it reached AWS before the crash)", key)
            return dict(store.finish_action(migration, key, {**seen, "reattached": True}).response or {})
    else:
        store.begin_action(migration, key, request)
    try:
        response = dict(send())
    except MigratorError as exc:
        try:
            seen = took_effect()
        except MigratorError:
            seen = None  # cannot tell: the call's own error is the one to report
        if seen is None:
            raise
        log.info("%s took effect although its answer was an error (%s)", key, exc.one_line())
        store.add_event(migration, "migration", "answer_lost", {"action": key, "error": exc.one_line()},
                        state=migration.phase)
        response = {**seen, "answer_lost": True}
    failpoints.hit("after_remote_call")
    return dict(store.finish_action(migration, key, response).response or {})


def recorded(ctx: "PhaseContext", key: str) -> dict[str, Any] | None:
    """The response of a finished action, or None."""
    found = ctx.store.get_action(ctx.migration, key)
    return dict(found.response or {}) if found is not None and found.status == "done" else None


def remember(ctx: "PhaseContext", key: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """Keep a computed fact (a baseline, recorded settings) under ``key``; the first value wins."""
    existing = recorded(ctx, key)
    if existing is not None:
        return existing
    ctx.store.begin_action(ctx.migration, key, {"kind": "record"})
    return dict(ctx.store.finish_action(ctx.migration, key, dict(value)).response or {})


def cluster_summary(cluster: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a DescribeClusters answer worth keeping in the store (JSON-safe)."""
    if cluster is None:
        return {"exists": False}
    return {"cluster_id": cluster.get("ClusterIdentifier"), "status": cluster.get("ClusterStatus"),
            "encrypted": bool(cluster.get("Encrypted")), "kms_key_id": cluster.get("KmsKeyId"),
            "node_type": cluster.get("NodeType"), "nodes": cluster.get("NumberOfNodes")}
