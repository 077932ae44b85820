"""A session's start and end: SSL/GSS refusal, cancel requests, protocol negotiation, the client's
authentication (md5 or cleartext), the backend login as the sandbox superuser (startup parameters
PostgreSQL accepts, SCRAM), acting as the client's role, and closing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import struct

from migrator.sandbox import wire
from migrator.sandbox.proxy.backend import BackendRelay
from migrator.sandbox.proxy.core import Dropped
from migrator.sandbox.redshift.settings import extra_float_digits_error
from migrator.sandbox.redshift.sqltokens import literal as quote_literal
from migrator.sandbox.redshift.sqltokens import quote_ident


log = logging.getLogger("migrator.sandbox.proxy")

#: Startup parameters PostgreSQL understands; redshift_connector adds many it refuses.
PASSED_STARTUP_PARAMS = ("application_name", "client_encoding", "DateStyle", "TimeZone",
                         "extra_float_digits", "options")


class SessionStartup(BackendRelay):
    """Connects, authenticates and logs in; runs the session to its end."""

    async def run(self) -> None:
        peer = self.client_writer.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.info.remote_host, self.info.remote_port = str(peer[0]), int(peer[1])
        try:
            if await self._startup():
                log.info("cluster %s: session pid=%s user=%s from %s", self.proxy.cluster_id,
                         self.info.pid, self.info.user, peer)
                await self._serve()
        except Dropped:
            log.warning("cluster %s: connection pid=%s dropped by fault", self.proxy.cluster_id, self.info.pid)
        except (ConnectionError, asyncio.IncompleteReadError, wire.ProtocolError, OSError) as exc:
            log.info("cluster %s: connection pid=%s ended: %s", self.proxy.cluster_id, self.info.pid, exc,
                     exc_info=log.isEnabledFor(logging.DEBUG))
        except Exception:  # a proxy bug must end one session, not the server
            log.exception("cluster %s: session pid=%s failed", self.proxy.cluster_id, self.info.pid)
        finally:
            if self._counted:
                self.proxy.stats.connections_open -= 1
            await self.close()
            if self._started:
                await self._session_event("disconnecting session")

    async def _session_event(self, event: str) -> None:
        """The interceptor's optional connection log (STL_CONNECTION_LOG); its failure ends nothing."""
        await self._observe("on_session", event, self.info)

    async def close(self) -> None:
        if self._relay_task is not None and self._relay_task is not asyncio.current_task():
            self._relay_task.cancel()
        self.abort()
        if self._relay_task is not None and self._relay_task is not asyncio.current_task():
            await asyncio.gather(self._relay_task, return_exceptions=True)

    async def _startup(self) -> bool:
        while True:
            code, rest = await self.client.read_startup()
            log.debug("cluster %s: startup packet code %s", self.proxy.cluster_id, code)
            if code in (wire.SSL_REQUEST, wire.GSSENC_REQUEST):
                self.client_writer.write(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                pid, key = struct.unpack("!Ii", rest[:8])
                await self.proxy.forward_cancel(pid, key)
                return False
            if code >> 16 != 3:
                await self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return False
            break
        params = wire.decode_startup_params(rest)
        extensions = [k for k in params if k.startswith("_pq_.")]
        if code != wire.PROTOCOL_3 or extensions:
            # Like PostgreSQL: offer 3.0 and name the protocol options we ignore.
            self.client_writer.write(wire.negotiate_protocol_version(0, extensions))
        user = params.get("user", "")
        self.info.user = user
        self.info.database = params.get("database") or user
        self.info.application_name = params.get("application_name", "")
        if not await self._authenticate(user):
            return False
        expected_db = self.proxy.database
        if expected_db is not None and self.info.database != expected_db:
            await self._fatal("3D000", f'database "{self.info.database}" does not exist')
            return False
        if not await self._connect_backend(params):
            return False
        self._started = True
        # Counted before the client can see it is connected, so stats never lag behind it.
        self._counted = True
        self.proxy.stats.connections_total += 1
        self.proxy.stats.connections_open += 1
        # Logged before the client hears it is in: a session it can use is already in
        # STL_CONNECTION_LOG, so a query right after a connect (or a close) finds its row.
        await self._session_event("initiating session")
        out = [wire.auth_request(wire.AUTH_OK)]
        out += [wire.parameter_status(k, v) for k, v in self._startup_params.items()]
        out.append(wire.message(b"K", struct.pack("!Ii", *self.backend_key)))
        out.append(wire.ready_for_query(self.tx_status))
        self.client_writer.write(b"".join(out))
        await self.client_writer.drain()
        return True

    async def _fatal(self, sqlstate: str, text: str) -> None:
        self.client_writer.write(wire.error_response(sqlstate, text, severity="FATAL"))
        await self.client_writer.drain()

    async def _authenticate(self, user: str) -> bool:
        expected = self.proxy.users.get(user)
        stored: str | None = None  # md5 + md5(password + user), as the cluster keeps it
        if expected is None and self.proxy.stored_password is not None and user:
            stored = await asyncio.to_thread(self.proxy.stored_password, user)
        salt = b""
        if self.proxy.auth == "md5":
            salt = secrets.token_bytes(4)
            self.client_writer.write(wire.auth_request(wire.AUTH_MD5, salt))
        else:
            self.client_writer.write(wire.auth_request(wire.AUTH_CLEARTEXT))
        await self.client_writer.drain()
        kind, payload = await self.client.read()
        supplied = payload.rstrip(b"\x00").decode("utf-8", "replace")
        if stored is not None and kind == b"p":
            ok = _matches_stored(self.proxy.auth, supplied, user, stored, salt if self.proxy.auth == "md5" else b"")
        elif expected is None or kind != b"p":
            ok = False
        elif self.proxy.auth == "md5":
            ok = hmac.compare_digest(supplied.encode("utf-8"), wire.md5_password(user, expected, salt).encode("ascii"))
        else:
            ok = hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))
        if not ok:
            log.warning("cluster %s: password authentication failed for user %r", self.proxy.cluster_id, user)
            await self._fatal("28P01", f'password authentication failed for user "{user}"')
        return ok

    async def _connect_backend(self, client_params: dict[str, str]) -> bool:
        proxy = self.proxy
        try:
            reader, self.backend_writer = await asyncio.open_connection(proxy.pg_host, proxy.pg_port)
        except OSError as exc:
            log.error("cluster %s: cannot reach PostgreSQL at %s:%s: %s", proxy.cluster_id, proxy.pg_host,
                      proxy.pg_port, exc)
            await self._fatal("57P03", "the database system is not accepting connections")
            return False
        self.backend = wire.MessageReader(reader)
        digits = client_params.get("extra_float_digits")
        refused = extra_float_digits_error(digits) if digits is not None else None
        if refused is not None:
            await self._fatal(*refused)
            return False
        params = {"user": proxy.pg_user, "database": proxy.pg_database}
        params.update({k: client_params[k] for k in PASSED_STARTUP_PARAMS if k in client_params})
        self.backend_writer.write(wire.startup_message(params))
        scram: wire.ScramClient | None = None
        while True:
            kind, payload = await self.backend.read()
            if kind == b"R":
                (code,) = struct.unpack_from("!I", payload)
                if code == wire.AUTH_CLEARTEXT:
                    self.backend_writer.write(wire.password_message(proxy.pg_password))
                elif code == wire.AUTH_MD5:
                    self.backend_writer.write(wire.password_message(
                        wire.md5_password(proxy.pg_user, proxy.pg_password, payload[4:8])))
                elif code == wire.AUTH_SASL:
                    scram = wire.ScramClient(proxy.pg_password)
                    self.backend_writer.write(scram.initial())
                elif code == wire.AUTH_SASL_CONTINUE and scram is not None:
                    self.backend_writer.write(scram.respond(payload[4:]))
                elif code == wire.AUTH_SASL_FINAL and scram is not None:
                    scram.verify(payload[4:])
                elif code != wire.AUTH_OK:
                    raise wire.ProtocolError(f"unsupported backend authentication request {code}")
            elif kind == b"S":
                self._note_parameter(payload)
            elif kind == b"K":
                self.backend_key = wire.decode_backend_key(payload)
                self.info.pid = self.backend_key[0]
            elif kind == b"E":
                fields = wire.decode_fields(payload)
                log.error("cluster %s: backend login failed: %s", proxy.cluster_id, fields.get("M"))
                self.client_writer.write(wire.message(kind, payload))
                return False
            elif kind == b"Z":
                self.tx_status = payload.decode("ascii")
                break
        self._relay_task = asyncio.create_task(self._relay(), name=f"relay-{proxy.cluster_id}-{self.info.pid}")
        if self.info.user != proxy.pg_user:
            await self._become_client_user()
        return True

    async def _become_client_user(self) -> None:
        """current_user is the client's when PostgreSQL knows that role, else the superuser's."""
        async with self._owning_backend():
            found = await self.roundtrip(
                f"select rolsuper from pg_catalog.pg_roles where rolname = {quote_literal(self.info.user)}")
            if found.rows:
                self.info.superuser = found.rows[0][0] == "t"
                result = await self.roundtrip(f"SET SESSION AUTHORIZATION {quote_ident(self.info.user)}")
                if result.error is not None:
                    log.warning("cluster %s: cannot act as role %r: %s", self.proxy.cluster_id,
                                self.info.user, result.error.message)
                    return
                await self._apply_user_defaults()

    async def _apply_user_defaults(self) -> None:
        """The user's ``ALTER USER ... SET parameter`` values, as its session starts ("ALTER USER":
        the value is the user's default in new sessions). PostgreSQL applies them at login only, and
        the proxy logs in as its own superuser, so they are applied here (USER_DEFAULTS_APPLIED
        only): the role's settings first, then those for this database (which win, as in
        PostgreSQL). Applied as SET, so a RESET returns to the server's default, not the user's."""
        user = quote_literal(self.info.user)
        found = await self.roundtrip(
            "select cfg from pg_catalog.pg_db_role_setting s join pg_catalog.pg_roles r on r.oid = s.setrole, "
            "unnest(s.setconfig) with ordinality as c(cfg, n) "
            f"where r.rolname = {user} and s.setdatabase in "
            "(0, (select oid from pg_catalog.pg_database where datname = current_database())) "
            "order by s.setdatabase, n")
        for (cfg,) in found.rows or []:
            name, _, value = str(cfg).partition("=")
            if name.lower() not in USER_DEFAULTS_APPLIED:
                continue
            applied = await self.roundtrip(
                f"select pg_catalog.set_config({quote_literal(name)}, {quote_literal(value)}, false)")
            if applied.error is not None:
                log.warning("cluster %s: cannot apply %s for %r: %s", self.proxy.cluster_id, name,
                            self.info.user, applied.error.message)


#: The ALTER USER ... SET parameters applied when a user's session starts (how dates and
#: timestamps render); others (search_path ...) stay as the server sets them.
USER_DEFAULTS_APPLIED = frozenset({"timezone", "datestyle"})


def _matches_stored(auth: str, supplied: str, user: str, stored: str, salt: bytes) -> bool:
    """Whether the client's answer proves the password whose md5 form the cluster stores."""
    if not stored.startswith("md5"):
        return False
    if auth == "md5":
        want = "md5" + hashlib.md5(stored[3:].encode("ascii") + salt).hexdigest()
    else:
        want = "md5" + hashlib.md5((supplied + user).encode("utf-8")).hexdigest()
        supplied = stored
        return hmac.compare_digest(want.encode("ascii"), supplied.encode("utf-8"))
    return hmac.compare_digest(supplied.encode("utf-8"), want.encode("ascii"))
