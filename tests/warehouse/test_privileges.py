"""Grants replayed from Redshift's ACLs (issue 9, item 2.8): a grantee or grantor whose name
holds '/', '=' or quotes gets exactly its own privileges on the target, never more."""

from __future__ import annotations

from typing import Any

import psycopg

from migrator.warehouse import replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory
from migrator.warehouse.sql import quote_ident

SRC, TGT = "acl-src", "acl-tgt"
GRANTEE, GRANTOR = 'ev=arwdD/il', 'x/y=arwdD"'


def _privileges(sb: Any, cluster: str) -> set[tuple[str, str]]:
    """(grantee, privilege) on acl.t, read straight from PostgreSQL (aclexplode)."""
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as conn:
        rows = conn.execute(
            "select coalesce(r.rolname, 'PUBLIC'), a.privilege_type from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a "
            "left join pg_roles r on r.oid = a.grantee where n.nspname = 'acl' and c.relname = 't'").fetchall()
    return {(str(g), str(p)) for g, p in rows}


def test_hostile_role_names_never_widen_a_grant(sb: Any) -> None:
    sb.create_cluster(SRC)
    sb.create_cluster(TGT, encrypted=True, kms_key_id=sb.info.kms_key_arn)
    with Session.of(sb.connect(SRC, autocommit=True)) as src:
        for name in (GRANTEE, GRANTOR):
            src.run(f"create user {quote_ident(name)} password disable")
        src.run('create schema "acl"')
        src.run('create table "acl"."t" ("v" integer)')
        src.run(f'alter table "acl"."t" owner to {quote_ident(GRANTOR)}')
        src.run(f'grant select on "acl"."t" to {quote_ident(GRANTEE)}')
        expected = {p for p in _privileges(sb, SRC) if p[0] == GRANTEE}
        assert expected == {(GRANTEE, "SELECT")}
        with Session.of(sb.connect(TGT, autocommit=True)) as tgt:
            replay.replay_objects(src, tgt, tables=read_inventory(src, include=["acl.*"]))
            replay.replay_after_data(src, tgt, include=["acl.*"])
    assert {p for p in _privileges(sb, TGT) if p[0] == GRANTEE} == expected
