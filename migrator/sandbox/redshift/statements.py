"""The statement interceptor for Redshift's S3 data statements (UNLOAD, COPY FROM 's3://...')."""

from __future__ import annotations

from typing import Any, Callable

from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import Intercept, SessionInfo
from migrator.sandbox.redshift.context import DataContext, LoadCommitHook, LoadErrorHook, UnloadHook
from migrator.sandbox.redshift.copy import CopyIntercept
from migrator.sandbox.redshift.options import is_s3_copy, is_unload, parse_copy, parse_unload
from migrator.sandbox.redshift.unload import UnloadIntercept


class RedshiftDataStatements:
    """Recognises UNLOAD and COPY-from-S3; everything else (COPY FROM STDIN / TO STDOUT too) passes through.

    A statement that is an UNLOAD or an S3 COPY but has bad syntax or conflicting
    options raises BackendError from :meth:`classify`, so the client sees the
    error on Parse, as with a real server.
    """

    def __init__(
        self,
        s3_client_factory: Callable[[], Any],
        kms_client_factory: Callable[[], Any] | None = None,
        faults: FaultPlan | None = None,
        iam_roles: set[str] | None = None,
        *,
        slices: int = 4,
        on_unload: UnloadHook | None = None,
        on_load_error: LoadErrorHook | None = None,
        on_load_commit: LoadCommitHook | None = None,
        account_id: str = "123456789012",
        region: str = "us-east-1",
    ) -> None:
        self.ctx = DataContext(
            s3_client_factory=s3_client_factory,
            kms_client_factory=kms_client_factory,
            faults=faults,
            iam_roles=iam_roles,
            slices=slices,
            on_unload=on_unload,
            on_load_error=on_load_error,
            on_load_commit=on_load_commit,
            account_id=account_id,
            region=region,
        )

    def classify(self, sql: str, session: SessionInfo | None = None) -> Intercept | None:
        if is_unload(sql):
            return UnloadIntercept(self.ctx, parse_unload(sql), sql)
        if is_s3_copy(sql):
            opts = parse_copy(sql)
            if opts is not None:
                return CopyIntercept(self.ctx, opts, sql)
        return None

    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> None:
        """Nothing to observe: UNLOAD and COPY report through their hooks."""
