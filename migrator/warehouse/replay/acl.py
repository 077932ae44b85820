"""Ownership and privileges: Redshift's ACLs parsed (quote-aware), GRANTs for what the target
lacks on tables, views and schemas (and, for routines.py, EXECUTE), ALTER ... OWNER TO, and
ALTER DEFAULT PRIVILEGES. Never REVOKE: a target's extra privileges are left as they are."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import matches
from migrator.warehouse.replay.statements import alter_default_privileges, alter_owner, grant, to_clause
from migrator.warehouse.replay.base import INTERNAL_USERS, Applier, ReplayResult, Skipped, catalog, truthy
from migrator.warehouse.sql import qualified, quote_ident

# Redshift's ACL letters (not PostgreSQL's: on Redshift D is DROP, not TRUNCATE). R (RULE) and
# t (TRIGGER) appear in an owner's default ACL but cannot be granted on Redshift.
_TABLE_PRIVS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "x": "REFERENCES", "D": "DROP"}
_ALL_TABLE = set(_TABLE_PRIVS)
_UNGRANTABLE = {"R", "t"}
_SCHEMA_PRIVS = {"U": "USAGE", "C": "CREATE"}
EXEC_PRIVS = {"X": "EXECUTE"}


@dataclass(frozen=True)
class AclEntry:
    grantee: str  # '' = PUBLIC
    privileges: str  # Redshift's letters, grant-option stars removed
    grantor: str = ""
    group: bool = False


def parse_acl(acl: Any) -> list[AclEntry]:
    """aclitem[] as the driver returns it (a list of items, or the array's '{...}' text) →
    entries. Quote-aware at both levels (array elements, then each item's names), so a
    grantee or grantor whose name holds ``/``, ``=``, ``,`` or quotes stays one name and can
    never add letters to a grant; an item that does not parse is left out, never guessed."""
    if not acl:
        return []
    items = [str(i) for i in acl] if isinstance(acl, (list, tuple)) else split_array_text(str(acl))
    return [e for e in (parse_acl_item(i) for i in items) if e is not None]


def _read_name(text: str, i: int, stop: str) -> tuple[str, int] | None:
    """A role name at text[i]: "quoted" (with "" for ") or bare up to a character in ``stop``."""
    if text.startswith('"', i):
        name, j = "", i + 1
        while True:
            k = text.find('"', j)
            if k < 0:
                return None
            if text.startswith('""', k):
                name, j = name + text[j:k] + '"', k + 2
                continue
            return name + text[j:k], k + 1
    j = i
    while j < len(text) and text[j] not in stop and text[j] != '"':
        j += 1
    return text[i:j], j


def parse_acl_item(item: str) -> AclEntry | None:
    """``[group ]grantee=letters/grantor`` (grantee empty for PUBLIC), names as PostgreSQL's
    putid writes them: quoted when they hold anything but letters, digits and underscores."""
    text = item.strip()
    group = text.startswith("group ")
    i = 6 if group else 0
    grantee = _read_name(text, i, "=")
    if grantee is None or not text.startswith("=", grantee[1]):
        return None
    j = grantee[1] + 1
    k = j
    while k < len(text) and (text[k].isalpha() or text[k] == "*"):
        k += 1
    if not text.startswith("/", k):
        return None
    grantor = _read_name(text, k + 1, "")
    if grantor is None or grantor[1] != len(text) or not grantor[0]:
        return None
    return AclEntry(grantee[0], text[j:k].replace("*", ""), grantor[0], group)


def split_array_text(text: str) -> list[str]:
    """The elements of an array literal: "quoted" ones with backslash escapes, or bare."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    items: list[str] = []
    cur, quoted, i, any_char = "", False, 0, False
    while i < len(body):
        ch = body[i]
        if quoted:
            if ch == "\\" and i + 1 < len(body):
                cur += body[i + 1]
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"':
            quoted, any_char = True, True
        elif ch == ",":
            items.append(cur)
            cur, any_char = "", False
        else:
            cur += ch
            any_char = True
        i += 1
    if cur or any_char:
        items.append(cur)
    return items


#: Tables named in one grouped GRANT at most (GRANT takes a list of tables: "GRANT", ON [ TABLE ]
#: table_name [, ...]), so a statement stays small.
GRANT_TABLES = 200


def grant_missing(apply: Applier, result: ReplayResult, on: str, label: str, source: list[AclEntry],
                  target: list[AclEntry], owner: str, groups: set[str], letters: dict[str, str],
                  grouped: dict[tuple[str, str], list[str]] | None = None) -> None:
    """GRANT on ``on`` (already quoted, with its keyword) what each source entry holds and the
    target's ACL lacks; letters with no GRANT form are reported in ``skipped``. With ``grouped``
    (tables only; ``on`` then the quoted table name alone), the grant is collected under its
    (privileges, grantee) for one GRANT naming many tables (grant_grouped)."""
    have = {e.grantee: set(e.privileges) for e in target}
    for entry in source:
        if entry.grantee == owner or entry.grantee in INTERNAL_USERS or entry.grantee.startswith("pg_"):
            continue
        wanted = set(entry.privileges)
        unknown = sorted(wanted - set(letters) - _UNGRANTABLE)
        if unknown:
            result.skipped.append(Skipped("grant", f"{label} to {entry.grantee or 'PUBLIC'}",
                                          f"privilege letters {''.join(unknown)} have no GRANT mapping"))
        missing = (wanted & set(letters)) - have.get(entry.grantee, set())
        if not missing:
            continue
        to = to_clause(entry.grantee, entry.group or entry.grantee in groups)
        if letters is _TABLE_PRIVS and _ALL_TABLE <= wanted:
            privs = "ALL"
        else:
            privs = ", ".join(letters[ch] for ch in sorted(missing))
        if grouped is not None:
            grouped.setdefault((privs, to), []).append(on)
        else:
            apply.run(grant(privs, on, to))


def grant_grouped(apply: Applier, grouped: dict[tuple[str, str], list[str]]) -> None:
    """One GRANT per (privileges, grantee) for up to GRANT_TABLES tables, instead of one per table."""
    for (privs, to), tables in grouped.items():
        for start in range(0, len(tables), GRANT_TABLES):
            apply.run(grant(privs, "TABLE " + ", ".join(tables[start:start + GRANT_TABLES]), to))


def replay_grants(source: Session, target: Session, apply: Applier, include: list[str], exclude: list[str],
                  groups: set[str]) -> None:
    """Ownership and grants of the tables and views both sides have, grants on the schemas both
    have, then default privileges."""
    result = apply.result
    tgt_rel = {(str(s), str(n)): (str(k), str(o), a) for s, n, k, o, a in catalog(target, "relations")}
    users = {str(r[0]) for r in catalog(target, "users")}
    grouped: dict[tuple[str, str], list[str]] = {}
    owners: list[str] = []
    for s, n, _kind, owner, acl in catalog(source, "relations"):
        s, n, owner = str(s), str(n), str(owner)
        if (s, n) not in tgt_rel or not matches(f"{s}.{n}", include, exclude):
            continue
        keyword = "TABLE"  # Redshift's GRANT/ALTER TABLE cover views too
        if owner != tgt_rel[(s, n)][1] and owner in users and owner not in INTERNAL_USERS:
            owners.append(alter_owner(keyword, qualified(s, n), owner))
        grant_missing(apply, result, qualified(s, n), f"{s}.{n}", parse_acl(acl),
                      parse_acl(tgt_rel[(s, n)][2]), owner, groups, _TABLE_PRIVS, grouped)
    apply.run_grouped(owners)  # many per transaction
    # After every ALTER ... OWNER: a grant is given by the table's owner as it will stay.
    grant_grouped(apply, grouped)
    tgt_schema_acl = {str(r[0]): parse_acl(r[2]) for r in catalog(target, "schemas")}
    for schema, owner, acl in catalog(source, "schemas"):
        schema = str(schema)
        if schema in tgt_schema_acl:
            grant_missing(apply, result, f"SCHEMA {quote_ident(schema)}", schema, parse_acl(acl),
                          tgt_schema_acl[schema], str(owner), groups, _SCHEMA_PRIVS)
    replay_default_privileges(source, target, apply, groups, users, set(tgt_schema_acl))


# -------------------------------------------------------------------- default privileges

_DEFAULT_OBJECTS = {"RELATION": "TABLES", "FUNCTION": "FUNCTIONS", "PROCEDURE": "PROCEDURES"}
_PRIVILEGE_WORD = re.compile(r"^[A-Z]+( [A-Z]+)?$")


def _default_privileges(session: Session) -> set[tuple[str, str, str, str, str, bool, str]]:
    """(owner, schema or '', object type, grantee or '' for PUBLIC, grantee type, grant option, privilege);
    an owner's own privileges (PostgreSQL lists them in schema-less entries) are left out."""
    out = set()
    for schema, objtype, owner, priv, grantee, gtype, admin in catalog(session, "default_privileges"):
        gtype = str(gtype or "").lower()
        grantee = "" if gtype == "public" else str(grantee)
        if grantee == str(owner):
            continue
        if not grantee and not schema and str(priv).upper() == "EXECUTE":
            continue  # PUBLIC may run new functions and procedures by default: nothing to replay
        out.add((str(owner), str(schema or ""), str(objtype).upper(), grantee, gtype, truthy(admin), str(priv).upper()))
    return out


def replay_default_privileges(source: Session, target: Session, apply: Applier, groups: set[str],
                              users: set[str], tgt_schemas: set[str]) -> None:
    """ALTER DEFAULT PRIVILEGES for every entry the target lacks, one statement per owner,
    schema, object type and grantee."""
    result = apply.result
    missing: dict[tuple[str, str, str, str, str, bool], list[str]] = {}
    for owner, schema, objtype, grantee, gtype, admin, priv in sorted(_default_privileges(source) - _default_privileges(target)):
        label = f"{owner}{' in ' + schema if schema else ''} on {objtype.lower()}s to {grantee or 'PUBLIC'}"
        reason = None
        if owner in INTERNAL_USERS:
            reason = f"for objects created by the service's internal user {owner}"
        elif owner not in users:
            reason = f"user {owner} does not exist on the target"
        elif schema and schema not in tgt_schemas:
            reason = f"schema {schema} does not exist on the target"
        elif objtype not in _DEFAULT_OBJECTS or not _PRIVILEGE_WORD.match(priv):
            reason = f"{priv} on {objtype} has no ALTER DEFAULT PRIVILEGES form"
        elif gtype == "role":
            reason = "granted to a role: roles are not replayed"
        if reason:
            result.skipped.append(Skipped("default privilege", f"{priv} {label}", reason))
            continue
        missing.setdefault((owner, schema, objtype, grantee, gtype, admin), []).append(priv)
    for (owner, schema, objtype, grantee, gtype, admin), privs in missing.items():
        to = to_clause(grantee, gtype == "group" or grantee in groups)
        apply.run(alter_default_privileges(owner, schema, sorted(privs), _DEFAULT_OBJECTS[objtype], to,
                                                      admin))
