"""Users and groups: the source's users the target lacks (PASSWORD DISABLE: passwords cannot
be read back, so each is listed for an operator to reset), its groups and their memberships.
The service's own accounts and PostgreSQL's predefined roles (sandbox) are left alone."""

from __future__ import annotations

from migrator.warehouse.connection import Session
from migrator.warehouse.replay.statements import add_to_group, create_group, create_user
from migrator.warehouse.replay.base import INTERNAL_USERS, Applier, catalog


def replay_users_and_groups(source: Session, target: Session, apply: Applier) -> set[str]:
    """Create the missing users, groups and memberships; returns the source's user names."""
    src_users = {str(r[0]): r for r in catalog(source, "users")}
    tgt_users = {str(r[0]) for r in catalog(target, "users")}
    for name, row in sorted(src_users.items()):
        if name in tgt_users or name in INTERNAL_USERS:
            continue
        options = ["PASSWORD DISABLE"] + (["CREATEUSER"] if row[1] else []) + (["CREATEDB"] if row[2] else [])
        apply.run(create_user(name, options))
        apply.result.users_to_reset.append(name)

    ids = {int(r[3]): str(r[0]) for r in catalog(source, "users")}
    tgt_ids = {int(r[3]): str(r[0]) for r in catalog(target, "users")}
    tgt_groups = {str(g): {tgt_ids.get(int(i), "") for i in (m or [])} for g, m in catalog(target, "groups")}
    for group, members in sorted((str(g), m) for g, m in catalog(source, "groups")):
        if group.startswith("pg_"):
            continue  # PostgreSQL's predefined roles (sandbox): not Redshift groups
        if group not in tgt_groups:
            apply.run(create_group(group))
            tgt_groups[group] = set()
        for uid in members or []:
            user = ids.get(int(uid))
            if user and user not in tgt_groups[group]:
                apply.run(add_to_group(group, user))
    return set(src_users)
