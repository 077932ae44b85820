"""Statements the interceptor claims, and the fault plan: injected faults before a statement, errors
the backend never raised, and running an intercept in a worker thread over the client's own backend
session (atomic like one Redshift statement, rolled back if the client leaves)."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from migrator.sandbox import wire
from migrator.sandbox.interfaces import BackendError, Intercept, QueryResult
from migrator.sandbox.proxy.backend import BackendRelay
from migrator.sandbox.proxy.core import Dropped, RoundTrip
from migrator.sandbox.proxy.errors import redshift_error
from migrator.sandbox.proxy.sql import raise_statement


log = logging.getLogger("migrator.sandbox.proxy")

_POOL_LOCK = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []


def intercept_pool() -> ThreadPoolExecutor:
    """Intercepts may run for minutes; they get their own threads so that short jobs on the
    loop's default executor (observers, fault checks) never queue behind them."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=64, thread_name_prefix="sandbox-intercept"))
        return _POOL[0]


class BackendHandle:
    """The :class:`Backend` an intercept drives, from its worker thread, over the session's backend."""

    def __init__(self, session: "BackendRelay", loop: asyncio.AbstractEventLoop) -> None:
        self._session = session
        self._loop = loop
        self.active = True

    def _run(self, sql: str, copy_in: bytes | None = None) -> RoundTrip:
        if not self.active:
            raise BackendError("55000", "backend handle used after its statement finished")
        future = asyncio.run_coroutine_threadsafe(self._session.roundtrip(sql, copy_in), self._loop)
        result = future.result()
        if result.error is not None:
            raise result.error
        return result

    def query(self, sql: str) -> QueryResult:
        result = self._run(sql)
        return QueryResult(result.tag, result.columns, result.rows)

    def copy_in(self, sql: str, data: bytes) -> str:
        return self._run(sql, copy_in=data).tag

    def copy_out(self, sql: str) -> bytes:
        return bytes(self._run(sql).copy_out)

    @property
    def transaction_status(self) -> str:
        return self._session.tx_status


class StatementInterception(BackendRelay):
    """Runs intercepted statements and applies the fault plan."""

    async def _faults(self, keyword: str, intercept: Intercept | None) -> tuple[str, str, str | None] | None:
        """Apply the fault plan before a statement runs; returns an error to report instead, if any."""
        plan = self.proxy.faults
        if plan is None:
            return None
        attrs = {"statement": keyword, "cluster": self.proxy.cluster_id}
        if await asyncio.to_thread(plan.take, "drop_connection", **attrs):
            self.abort()
            raise Dropped()
        latency = await asyncio.to_thread(plan.take, "latency", **attrs)
        if latency is not None:
            log.warning("cluster %s: pid=%s injected latency %s before %s", self.proxy.cluster_id,
                        self.info.pid, latency.params, keyword)
            await asyncio.sleep(float(latency.params.get("seconds", 1.0)))
        if getattr(intercept, "handles_sql_error_faults", False):
            return None  # the emulation matches sql_error faults itself (it knows the table)
        error = await asyncio.to_thread(plan.take, "sql_error", **attrs)
        if error is not None:
            log.warning("cluster %s: pid=%s injected error %s for %s", self.proxy.cluster_id, self.info.pid,
                        error.params, keyword)
            return (str(error.params.get("sqlstate", "XX000")),
                    str(error.params.get("message", "injected failure")), error.params.get("detail"))
        return None

    async def _fail(self, sqlstate: str, text: str, detail: str | None) -> None:
        """Report an error the backend never raised, leaving its transaction as PostgreSQL would."""
        await self._drain()
        if self.tx_status == "T":
            async with self._owning_backend():
                await self.roundtrip(raise_statement(sqlstate, text, detail))
        self._reply(wire.error_response(sqlstate, text, detail))

    async def _intercepted(self, sql: str, intercept: Intercept, formats: list[int], *, simple: bool) -> bool:
        """Run an intercepted statement and answer the client; False when it failed."""
        if self.tx_status == "E":
            self._reply(wire.error_response(
                "25P02", "current transaction is aborted, commands ignored until end of transaction block"))
            return False
        try:
            result = await self._run_intercept(intercept)
            columns = list(intercept.columns) or result.columns
            out = []
            if simple and columns:
                out.append(wire.row_description([wire.ColumnSpec(c.name, c.type_oid) for c in columns]))
            for row in result.rows:
                out.append(wire.data_row([
                    wire.encode_value(v, columns[i].type_oid if i < len(columns) else 25,
                                      wire.result_format(formats, i))
                    for i, v in enumerate(row)]))
        except BackendError as err:
            await self._failed(sql)
            self._reply(wire.error_response(*redshift_error(err.sqlstate, err.message, err.detail)))
            return False
        except (ValueError, IndexError) as exc:
            await self._failed(sql)
            self._reply(wire.error_response("XX000", f"sandbox cannot encode the result: {exc}"))
            return False
        out.append(wire.command_complete(result.tag))
        self._reply(*out)
        await self._completed(sql, result.tag)
        return True

    async def _failed(self, sql: str) -> None:
        """An intercepted statement ended in an error: the system log closes the row its hooks opened."""
        await self._observe("after_failure", sql, self.info)

    async def _run_intercept(self, intercept: Intercept) -> QueryResult:
        """intercept.execute in a worker thread, atomic like one Redshift statement."""
        async with self._owning_backend():
            # Outside a transaction block the statement gets its own, as Redshift's
            # UNLOAD/COPY are atomic even in autocommit mode.
            own_transaction = self.tx_status == "I" and getattr(intercept, "atomic", True)
            if own_transaction:
                await self.roundtrip("BEGIN")
            handle = BackendHandle(self, asyncio.get_running_loop())
            watcher = asyncio.create_task(self._abort_when_client_leaves())
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    intercept_pool(), intercept.execute, handle, self.info)
            except BackendError as err:
                await self._after_failure(err, own_transaction)
                raise
            except ConnectionAbortedError:
                # The emulation asks to lose the connection mid-statement (a drop_connection
                # fault keyed on something only it knows, e.g. the table).
                self.abort()
                raise Dropped() from None
            except Exception as exc:
                log.exception("cluster %s: intercepted statement crashed", self.proxy.cluster_id)
                err = BackendError("XX000", f"sandbox emulation failed: {exc}")
                await self._after_failure(err, own_transaction)
                raise err from exc
            finally:
                handle.active = False
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)  # before anyone reads the client again
            if own_transaction and self.tx_status != "I":
                done = await self.roundtrip("COMMIT")
                if done.error is not None:
                    raise done.error
            return result

    async def _abort_when_client_leaves(self) -> None:
        """While an intercept runs nobody reads the client; a client that leaves must still
        end the backend at once, so the work rolls back instead of committing."""
        await self.client.wait_eof()
        log.info("cluster %s: client of pid=%s left during an intercepted statement", self.proxy.cluster_id,
                 self.info.pid)
        self.abort()

    async def _after_failure(self, err: BackendError, own_transaction: bool) -> None:
        if own_transaction:
            await self.roundtrip("ROLLBACK")
        elif self.tx_status == "T":
            await self.roundtrip(raise_statement(err.sqlstate, err.message, err.detail))
