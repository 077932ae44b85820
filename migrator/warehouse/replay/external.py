"""External schemas and tables: reported by name, never created. They live in an outside
catalog (Glue, Hive, a federated database) and are reached through an IAM role: nothing to
copy, and not recreatable without a role the target is allowed to use."""

from __future__ import annotations

from migrator.warehouse.connection import Session
from migrator.warehouse.replay.base import ReplayResult, Skipped, catalog


def report_external(source: Session, result: ReplayResult) -> None:
    """Each external schema and table in ``skipped``, with what an operator does about it."""
    for schema, database in catalog(source, "external_schemas"):
        result.skipped.append(Skipped(
            "external schema", str(schema),
            f"external schema over catalog database {str(database)!r}: recreate it with CREATE EXTERNAL SCHEMA "
            "and an IAM role associated with the target cluster"))
    for schema, table, location in catalog(source, "external_tables"):
        result.skipped.append(Skipped(
            "external table", f"{schema}.{table}",
            f"external table (data at {location}) belongs to external schema {schema}: it returns with that schema, "
            "nothing to copy"))
