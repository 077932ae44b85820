"""What the store says about a cutover's swap: the keys each attempt records its renames under,
and whether the production name may be without a cluster. Read by `status`, which must not
import what a run needs (boto3, the strategies' AWS code), so it lives apart from cutover.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrator.store import MigrationView, Store

PLAN_KEY = "cutover:plan"
#: The cluster answering under the production name after the swap, as AWS describes it (the evidence).
PRODUCTION_ANSWERS_KEY = "cutover:production_name_answers"


@dataclass(frozen=True)
class SwapKeys:
    """Store keys of one cutover attempt. An attempt that gave the production name back is over;
    the next run starts a new one (attempt 1 keeps the historical key names)."""

    attempt: int

    def _key(self, name: str) -> str:
        return f"cutover:{name}" if self.attempt == 1 else f"cutover:{name}#{self.attempt}"

    @property
    def rename_source(self) -> str:
        return self._key("rename_source")

    @property
    def rename_target(self) -> str:
        return self._key("rename_target")

    @property
    def give_back(self) -> str:
        return self._key("give_back")


def swap_keys(store: "Store", migration: "MigrationView") -> SwapKeys:
    attempt = 1
    while True:
        found = store.get_action(migration, SwapKeys(attempt).give_back)
        if found is None or found.status != "done":
            return SwapKeys(attempt)
        attempt += 1


def production_gap(store: "Store", migration: "MigrationView") -> str | None:
    """The one line `status` puts first when the production name may have no cluster: the source
    was (maybe) renamed away and neither the new cluster nor the source holds the name yet."""
    def status_of(key: str) -> str | None:
        found = store.get_action(migration, key)
        return found.status if found is not None else None

    plan_found = store.get_action(migration, PLAN_KEY)
    production = (plan_found.response or {}).get("source_id") if plan_found is not None else None
    if not production:
        return None
    if status_of("rollback:rename_source_back") == "done":
        return None
    keys = swap_keys(store, migration)
    away = status_of(keys.rename_source)
    if away is not None and status_of(keys.rename_target) != "done" and status_of(keys.give_back) != "done":
        certainty = "HAS NO CLUSTER" if away == "done" else "MAY HAVE NO CLUSTER (a rename was in flight)"
        return (f"PRODUCTION NAME {production} {certainty}: the source was renamed away; run `migrator run` to finish "
                "the cutover or `migrator rollback` to give the name back to the source")
    if status_of("rollback:rename_target_back") is not None and status_of("rollback:rename_source_back") != "done":
        return (f"PRODUCTION NAME {production} MAY HAVE NO CLUSTER: a rollback moved the new cluster away; run "
                "`migrator rollback` to give the name back to the source")
    return None


__all__ = ["PLAN_KEY", "SwapKeys", "production_gap", "swap_keys"]
