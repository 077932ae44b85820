"""The client side of a session: each frontend message in order (simple Query, and Parse, Bind,
Describe, Close, Sync, Execute of the extended protocol), rewritten and classified, then either
forwarded to PostgreSQL or answered by the proxy for intercepted statements."""

from __future__ import annotations

from typing import Awaitable, Callable

from migrator.sandbox import wire
from migrator.sandbox.interfaces import BackendError, Intercept
from migrator.sandbox.proxy.core import Expect, Portal, Statement
from migrator.sandbox.proxy.errors import redshift_error
from migrator.sandbox.proxy.intercepts import StatementInterception
from migrator.sandbox.proxy.sql import first_keyword, split_statements


class ClientProtocol(StatementInterception):
    """Serves the client's messages."""

    async def _serve(self) -> None:
        handlers: dict[bytes, Callable[[bytes], Awaitable[None]]] = {
            b"Q": self._on_query, b"P": self._on_parse, b"B": self._on_bind, b"D": self._on_describe,
            b"E": self._on_execute, b"C": self._on_close, b"S": self._on_sync,
        }
        while True:
            run = b"" if self._skipping else self.client.take_run(b"d")
            if run:  # COPY FROM STDIN data from psql: relayed in bulk
                self._send_backend(run)
                await self._flush_backend()
                continue
            kind, payload = await self.client.read()
            if kind == b"X":
                if not self._backend_dead and self.backend_writer is not None:
                    self.backend_writer.write(wire.TERMINATE)
                    self.backend_writer.close()  # graceful: PostgreSQL reads the Terminate first
                return
            handler = handlers.get(kind)
            if handler is not None:
                await handler(payload)
            elif kind == b"F":
                self._forward(kind, payload, Expect("query"))
            else:  # Flush, CopyData/CopyDone/CopyFail and anything else PostgreSQL judges
                self._send_backend(wire.message(kind, payload))
            if self._backend_dead:
                return
            await self.client_writer.drain()
            await self._flush_backend()

    def _forward(self, kind: bytes, payload: bytes, expect: Expect) -> None:
        if not self._skipping:
            self._send_backend(wire.message(kind, payload), expect)

    def _reply(self, *messages: bytes) -> None:
        self.client_writer.write(b"".join(messages))

    def _classify(self, sql: str) -> Intercept | None:
        interceptor = self.proxy.interceptor
        if interceptor is None or not sql.strip():
            return None
        return interceptor.classify(sql, self.info)

    def _rewrite(self, sql: str) -> str | None:
        """The interceptor's optional text rewrite (Redshift settings syntax); None keeps ``sql``."""
        rewrite = getattr(self.proxy.interceptor, "rewrite", None)
        if rewrite is None or not sql.strip():
            return None
        result: str | None = rewrite(sql, self.info)
        return result

    async def _on_parse(self, payload: bytes) -> None:
        parse = wire.decode_parse(payload)
        rewritten = self._rewrite(parse.sql)
        if rewritten is not None:
            parse = wire.Parse(parse.statement, rewritten, parse.param_oids)
            payload = wire.parse_payload(parse)
        try:
            intercept = self._classify(parse.sql)
        except BackendError as err:
            # A recognised statement with bad options: the client sees the error on Parse.
            await self._drain()
            if not self._skipping:
                await self._fail(*redshift_error(err.sqlstate, err.message, err.detail))
                self._skipping = True
            return
        if intercept is None:
            if not self._skipping:
                self._statements[parse.statement] = Statement(parse.sql, None, parse.param_oids)
            self._forward(b"P", payload, Expect("parse"))
            return
        await self._drain()
        if not self._skipping:
            self._statements[parse.statement] = Statement(parse.sql, intercept, parse.param_oids)
            self._reply(wire.PARSE_COMPLETE)

    async def _on_bind(self, payload: bytes) -> None:
        bind = wire.decode_bind(payload)
        statement = self._statements.get(bind.statement)
        if statement is None or statement.intercept is None:
            if statement is not None and not self._skipping:
                self._portals[bind.portal] = Portal(statement, bind.result_formats)
            self._forward(b"B", payload, Expect("bind"))
            return
        await self._drain()
        if not self._skipping:
            self._portals[bind.portal] = Portal(statement, bind.result_formats)
            self._reply(wire.BIND_COMPLETE)

    async def _on_describe(self, payload: bytes) -> None:
        target, name = wire.decode_target(payload)
        if target == "S":
            statement = self._statements.get(name)
            formats: list[int] = []
        else:
            portal = self._portals.get(name)
            statement = portal.statement if portal else None
            formats = portal.result_formats if portal else []
        if statement is None or statement.intercept is None:
            self._forward(b"D", payload, Expect("describe"))
            return
        await self._drain()
        if self._skipping:
            return
        columns = [wire.ColumnSpec(c.name, c.type_oid) for c in statement.intercept.columns]
        described = wire.row_description(columns, formats) if columns else wire.NO_DATA
        if target == "S":
            self._reply(wire.parameter_description(statement.param_oids), described)
        else:
            self._reply(described)

    async def _on_close(self, payload: bytes) -> None:
        target, name = wire.decode_target(payload)
        if target == "S":
            statement = self._statements.get(name)
        else:
            portal = self._portals.get(name)
            statement = portal.statement if portal else None
        if statement is None or statement.intercept is None:
            self._forward(b"C", payload, Expect("close"))
        else:
            await self._drain()
            if self._skipping:
                return
            self._reply(wire.CLOSE_COMPLETE)
        if self._skipping:
            return
        if target == "S":
            self._statements.pop(name, None)
        else:
            self._portals.pop(name, None)

    async def _on_sync(self, payload: bytes) -> None:
        self._skipping = False
        self._send_backend(wire.message(b"S", payload), Expect("sync"))

    async def _on_execute(self, payload: bytes) -> None:
        if self._skipping:
            return
        portal_name, _max_rows = wire.decode_execute(payload)
        portal = self._portals.get(portal_name)
        statement = portal.statement if portal else None
        failure = await self._faults(first_keyword(statement.sql) if statement else "",
                                     statement.intercept if statement else None)
        if failure is not None:
            await self._fail(*failure)
            self._skipping = True
        elif statement is None or statement.intercept is None:
            self._forward(b"E", payload, Expect("execute", statement.sql if statement else None))
        else:
            await self._drain()
            if not self._skipping:
                assert portal is not None
                if not await self._intercepted(statement.sql, statement.intercept, portal.result_formats,
                                               simple=False):
                    self._skipping = True

    async def _on_query(self, payload: bytes) -> None:
        if self._skipping:
            return  # PostgreSQL ignores even simple queries until Sync
        sql = wire.decode_query(payload)
        rewritten = self._rewrite(sql)
        if rewritten is not None:
            sql = rewritten
            payload = wire.cstr(sql)
        try:
            intercept = self._classify(sql)
            parts = [(sql, intercept)]
            if intercept is None:
                pieces = split_statements(sql)
                if len(pieces) > 1:
                    classified = [(piece, self._classify(piece)) for piece in pieces]
                    if any(claimed is not None for _, claimed in classified):
                        parts = classified
        except BackendError as err:
            await self._fail(*redshift_error(err.sqlstate, err.message, err.detail))
            self._reply(wire.ready_for_query(self.tx_status))
            return
        if len(parts) == 1 and intercept is None:
            failure = await self._faults(first_keyword(sql), None)
            if failure is None:
                self._send_backend(wire.message(b"Q", payload), Expect("query", sql))
                return
            await self._fail(*failure)
        else:
            # A query string mixing intercepted and normal statements runs one
            # statement at a time, stopping at the first error as PostgreSQL does.
            for part_sql, part_intercept in parts:
                if not await self._simple_statement(part_sql, part_intercept):
                    break
        self._reply(wire.ready_for_query(self.tx_status))

    async def _simple_statement(self, sql: str, intercept: Intercept | None) -> bool:
        failure = await self._faults(first_keyword(sql), intercept)
        if failure is not None:
            await self._fail(*failure)
            return False
        if intercept is not None:
            await self._drain()
            return await self._intercepted(sql, intercept, [], simple=True)
        expect = Expect("query", sql, internal=True)
        self._send_backend(wire.query(sql), expect)
        await self._drain()
        return not expect.failed
