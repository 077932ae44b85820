from __future__ import annotations

from typing import Any

from migrator.aws import staging
from migrator.warehouse import pipeline
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo
from migrator.warehouse.sql import DataFormat


def stage(sb: Any, src: Session, t: TableInfo, *, migration: str, attempt: int = 1,
          fmt: DataFormat | None = None) -> pipeline.UnloadResult:
    u = pipeline.unload_table(src, t.schema, t.name, t.columns, staging_uri=f"s3://{sb.info.bucket}/wh/",
                              migration=migration, attempt=attempt, iam_role_arn=sb.info.iam_role_arn,
                              kms_key_id=sb.info.kms_alias, fmt=fmt)
    staging.verify_staging(sb.client("s3"), sb.client("kms"), u.manifest_url, kms_key_id=sb.info.kms_alias,
                           expected_rows=u.rows)
    return u


def load(sb: Any, tgt_tx: Session, t: TableInfo, u: pipeline.UnloadResult, *, migration: str,
         attempt: int = 1) -> pipeline.LoadResult:
    return pipeline.load_exactly_once(tgt_tx, t.schema, t.name, manifest_url=u.manifest_url, fmt=u.format,
                                      iam_role_arn=sb.info.iam_role_arn, migration=migration, attempt=attempt,
                                      explicit_ids=bool(t.identity_columns), expected_rows=u.rows,
                                      columns=t.columns)
