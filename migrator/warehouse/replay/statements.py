"""The short statements replay writes, in one place: every name goes through quote_ident or
qualified, never pasted. DDL takes no bind parameters, so these are built as text; the values
in them are the catalog's own (a constraint or default definition as pg_get_*def prints it).
The longer per-object renderers live with what they render: create_table_sql (ddl.py),
view_sql and mv_sql (views.py), routine_sql (routines.py)."""

from __future__ import annotations

from migrator.warehouse.sql import qualified, quote_ident


def create_user(name: str, options: list[str]) -> str:
    return f"CREATE USER {quote_ident(name)} {' '.join(options)}"


def create_group(group: str) -> str:
    return f"CREATE GROUP {quote_ident(group)}"


def add_to_group(group: str, user: str) -> str:
    return f"ALTER GROUP {quote_ident(group)} ADD USER {quote_ident(user)}"


def create_schema(schema: str, owner: str | None) -> str:
    return f"CREATE SCHEMA {quote_ident(schema)}" + (f" AUTHORIZATION {quote_ident(owner)}" if owner else "")


def column_ranges(columns: list[tuple[str, str]]) -> str:
    """The lowest and highest value of each (relation, column), one row each in this order,
    tagged with its position (the first bound parameter of each branch: pass range(len(columns)));
    relations already quoted (TableInfo.quoted). One statement for many tables: UNION ALL keeps
    duplicates, and the tag says which row is whose whatever order the rows come back in."""
    return "\nunion all\n".join(f"select %s, min({quote_ident(c)}), max({quote_ident(c)}) from {relation}"
                                 for relation, c in columns)


def add_constraint(schema: str, table: str, name: str, definition: str) -> str:
    return f"ALTER TABLE {qualified(schema, table)} ADD CONSTRAINT {quote_ident(name)} {definition}"


def alter_owner(keyword: str, target: str, owner: str) -> str:
    """keyword: TABLE (Redshift's ALTER TABLE covers views too), FUNCTION or PROCEDURE;
    target: the object already quoted (qualified name, or a routine's signature)."""
    return f"ALTER {keyword} {target} OWNER TO {quote_ident(owner)}"


def to_clause(name: str, group: bool) -> str:
    """'' is PUBLIC."""
    return "PUBLIC" if not name else (f"GROUP {quote_ident(name)}" if group else quote_ident(name))


def grant(privileges: str, on: str, to: str) -> str:
    """on: 'TABLE "s"."t"', 'SCHEMA "s"', 'FUNCTION "s"."f"(int4)' (already quoted); to: to_clause()."""
    return f"GRANT {privileges} ON {on} TO {to}"


def refresh_materialized_view(schema: str, name: str) -> str:
    return f"REFRESH MATERIALIZED VIEW {qualified(schema, name)}"


def alter_default_privileges(owner: str, schema: str, privileges: list[str], objects: str, to: str,
                             grant_option: bool) -> str:
    """objects: TABLES, FUNCTIONS or PROCEDURES; schema '' for every schema; to: to_clause()."""
    return (f"ALTER DEFAULT PRIVILEGES FOR USER {quote_ident(owner)}"
            + (f" IN SCHEMA {quote_ident(schema)}" if schema else "")
            + f" GRANT {', '.join(privileges)} ON {objects} TO {to}"
            + (" WITH GRANT OPTION" if grant_option else ""))
