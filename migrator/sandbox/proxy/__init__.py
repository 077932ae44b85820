"""A PostgreSQL wire-protocol proxy that makes a local PostgreSQL look like a Redshift cluster.

One :class:`RedshiftProxy` per emulated cluster. It answers SSL/GSS requests with
``N``, authenticates clients itself (md5 or cleartext), logs in to PostgreSQL as
the sandbox superuser, strips the startup parameters PostgreSQL refuses, reports
``server_version`` 8.0.2 and otherwise relays messages unchanged — except for
statements the :class:`StatementInterceptor` claims: those never reach
PostgreSQL; the proxy answers the protocol itself and runs the intercept's work
on Execute, in a worker thread, over the client's own backend session.

Optional attributes an :class:`Intercept` may carry (read with getattr):
``atomic`` (default True): outside a transaction block the proxy wraps the
work in BEGIN/COMMIT, so it is all-or-nothing like one Redshift statement; set
False for work PostgreSQL refuses inside a block (VACUUM).
``handles_sql_error_faults`` (default False): the proxy then leaves
``sql_error`` faults to the emulation, which can match on the table.
``after_statement`` is called for intercepted statements too, after success.
An interceptor may also offer ``after_failure(sql, session)``: called (in a worker thread) when an
intercepted statement failed, so an observer can end what the statement's own work logged.
An interceptor may also offer ``on_session(event, session)``: called (in a worker thread) with
"initiating session" once a client is in and "disconnecting session" when it leaves
(STL_CONNECTION_LOG).
An interceptor may also offer ``rewrite(sql, session) -> str | None``: a text rewrite
applied to every Parse and Query before anything else (Redshift's settings syntax).
An intercept raising ConnectionAbortedError makes the proxy drop the client
and backend connections there and then, as if the network failed mid-statement.

Client messages are handled strictly in order by one task per connection; one
relay task reads the backend. Every message forwarded to the backend records
what response ends it, so before the proxy answers a message itself it can wait
until everything forwarded earlier has been answered ("drain").

The parts: ``server`` (`RedshiftProxy`, `ProxyStats`), ``thread`` (`ProxyThread`), ``session``
(`Session`, composed of ``startup``, ``client``, ``intercepts`` and ``backend`` over ``core``),
``sql`` (statement text) and ``errors`` (Redshift's wording of errors).
"""

from __future__ import annotations

from migrator.sandbox.proxy.backend import REDSHIFT_SERVER_VERSION
from migrator.sandbox.proxy.errors import REDSHIFT_ISOLATION_ERROR, SERIALIZATION_FAILURE, redshift_error
from migrator.sandbox.proxy.server import ProxyStats, RedshiftProxy
from migrator.sandbox.proxy.sql import WRITE_TAGS, first_keyword, is_write_tag, raise_statement, split_statements
from migrator.sandbox.proxy.startup import PASSED_STARTUP_PARAMS
from migrator.sandbox.proxy.thread import ProxyThread
from migrator.sandbox.redshift.sqltokens import literal as quote_literal
from migrator.sandbox.redshift.sqltokens import quote_ident

__all__ = ["PASSED_STARTUP_PARAMS", "REDSHIFT_ISOLATION_ERROR", "REDSHIFT_SERVER_VERSION", "SERIALIZATION_FAILURE",
           "WRITE_TAGS", "ProxyStats", "ProxyThread", "RedshiftProxy", "first_keyword", "is_write_tag",
           "quote_ident", "quote_literal", "raise_statement", "redshift_error", "split_statements"]
