"""PostgreSQL frontend/backend protocol (v3) messages: framing, encoding, decoding.

Only what the sandbox proxy needs. Payloads are ``bytes`` without the type byte
and length word; :func:`message` adds the framing back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Sequence

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

MAX_MESSAGE = 1 << 30


class ProtocolError(Exception):
    """The peer sent something that is not a valid protocol message."""


# ---------------------------------------------------------------- framing

def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def cstr(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return raw + b"\x00"


class MessageReader:
    """Reads framed messages from a stream, buffering so large results relay in chunks."""

    def __init__(self, reader: asyncio.StreamReader, chunk: int = 1 << 16) -> None:
        self._reader = reader
        self._buf = bytearray()
        self._pos = 0  # consumed prefix of _buf; compacted lazily to keep reads O(n)
        self._chunk = chunk

    def _available(self) -> int:
        return len(self._buf) - self._pos

    def buffered(self) -> bool:
        """True when a whole message is already buffered (no socket read needed)."""
        if self._available() < 5:
            return False
        (length,) = struct.unpack_from("!I", self._buf, self._pos + 1)
        return self._available() >= 1 + length

    async def _fill(self, need: int) -> None:
        if self._available() >= need:
            return
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        while len(self._buf) < need:
            data = await self._reader.read(max(self._chunk, need - len(self._buf)))
            if not data:
                raise ConnectionResetError("peer closed the connection")
            self._buf += data

    def _take(self, size: int) -> bytes:
        out = bytes(self._buf[self._pos:self._pos + size])
        self._pos += size
        return out

    async def wait_eof(self) -> None:
        """Buffer whatever arrives until the peer closes; cancel the wait to stop watching."""
        while True:
            data = await self._reader.read(self._chunk)
            if not data:
                return
            self._buf += data

    def take_run(self, kinds: bytes) -> bytes:
        """The longest run of whole buffered messages whose type is in ``kinds``, still framed.

        Bulk rows and COPY data need no inspection, so they are relayed in one write.
        """
        buf, start = self._buf, self._pos
        pos, end = start, len(buf)
        while end - pos >= 5 and buf[pos] in kinds:
            (length,) = struct.unpack_from("!I", buf, pos + 1)
            if length < 4 or end - pos < 1 + length:
                break
            pos += 1 + length
        if pos == start:
            return b""
        self._pos = pos
        return bytes(buf[start:pos])

    async def read(self) -> tuple[bytes, bytes]:
        await self._fill(5)
        (length,) = struct.unpack_from("!I", self._buf, self._pos + 1)
        if length < 4 or length > MAX_MESSAGE:
            raise ProtocolError(f"bad message length {length}")
        await self._fill(1 + length)
        kind = self._take(1)
        self._pos += 4
        return kind, self._take(length - 4)

    async def read_startup(self) -> tuple[int, bytes]:
        """The untyped first packet: (protocol code, rest)."""
        await self._fill(4)
        (length,) = struct.unpack_from("!I", self._buf, self._pos)
        if length < 8 or length > 10_000:
            raise ProtocolError(f"bad startup packet length {length}")
        await self._fill(length)
        (code,) = struct.unpack_from("!I", self._buf, self._pos + 4)
        self._pos += 8
        return code, self._take(length - 8)


# ---------------------------------------------------------------- startup

def decode_startup_params(rest: bytes) -> dict[str, str]:
    parts = rest.split(b"\x00")
    params: dict[str, str] = {}
    for i in range(0, len(parts) - 1, 2):
        if not parts[i]:
            break
        params[parts[i].decode("utf-8", "replace")] = parts[i + 1].decode("utf-8", "replace")
    return params


def startup_message(params: dict[str, str]) -> bytes:
    body = struct.pack("!I", PROTOCOL_3) + b"".join(cstr(k) + cstr(v) for k, v in params.items()) + b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def negotiate_protocol_version(minor: int, unrecognized: list[str]) -> bytes:
    return message(b"v", struct.pack("!II", minor, len(unrecognized)) + b"".join(cstr(o) for o in unrecognized))


def cancel_request(pid: int, key: int) -> bytes:
    return struct.pack("!IIIi", 16, CANCEL_REQUEST, pid, key)


# ---------------------------------------------------------------- authentication

def auth_request(code: int, extra: bytes = b"") -> bytes:
    return message(b"R", struct.pack("!I", code) + extra)


def md5_password(user: str, password: str, salt: bytes) -> str:
    inner = hashlib.md5((password + user).encode("utf-8")).hexdigest()
    return "md5" + hashlib.md5(inner.encode("ascii") + salt).hexdigest()


def password_message(text: str | bytes) -> bytes:
    return message(b"p", cstr(text))


class ScramClient:
    """SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL speaks it, for the proxy's own backend login."""

    MECHANISM = "SCRAM-SHA-256"

    def __init__(self, password: str) -> None:
        self._password = password.encode("utf-8")
        self._nonce = base64.b64encode(secrets.token_bytes(18)).decode("ascii")
        self._first_bare = f"n=,r={self._nonce}"
        self._server_signature = b""

    def initial(self) -> bytes:
        first = ("n,," + self._first_bare).encode("ascii")
        return message(b"p", cstr(self.MECHANISM) + struct.pack("!i", len(first)) + first)

    def respond(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode("ascii").split(","))
        if not attrs["r"].startswith(self._nonce):
            raise ProtocolError("SCRAM server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self._password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self._first_bare},{server_first.decode('ascii')},{without_proof}".encode("ascii")
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self._server_signature = hmac.digest(server_key, auth_message, "sha256")
        final = f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode("ascii")
        return message(b"p", final)

    def verify(self, server_final: bytes) -> None:
        text = server_final.decode("ascii")
        if not text.startswith("v=") or base64.b64decode(text[2:]) != self._server_signature:
            raise ProtocolError("SCRAM server signature mismatch")


# ---------------------------------------------------------------- backend → client

def error_response(sqlstate: str, text: str, detail: str | None = None, severity: str = "ERROR") -> bytes:
    fields = cstr("S" + severity) + cstr("V" + severity) + cstr("C" + sqlstate) + cstr("M" + text)
    if detail:
        fields += cstr("D" + detail)
    return message(b"E", fields + b"\x00")


def decode_fields(payload: bytes) -> dict[str, str]:
    """ErrorResponse/NoticeResponse fields keyed by their one-letter code."""
    out: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def ready_for_query(status: str) -> bytes:
    return message(b"Z", status.encode("ascii"))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def decode_parameter_status(payload: bytes) -> tuple[str, str]:
    name, value, _ = payload.split(b"\x00", 2)
    return name.decode("utf-8", "replace"), value.decode("utf-8", "replace")


def decode_backend_key(payload: bytes) -> tuple[int, int]:
    pid, key = struct.unpack("!Ii", payload[:8])
    return pid, key


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def decode_command_complete(payload: bytes) -> str:
    return payload.rstrip(b"\x00").decode("utf-8", "replace")


def parameter_description(oids: Sequence[int] = ()) -> bytes:
    return message(b"t", struct.pack("!H", len(oids)) + b"".join(struct.pack("!I", o) for o in oids))


NO_DATA = message(b"n")
PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
EMPTY_QUERY = message(b"I")
SYNC = message(b"S")
FLUSH = message(b"H")
TERMINATE = message(b"X")
COPY_DONE = message(b"c")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type_oid: int
    type_size: int = -1
    type_mod: int = -1


_TYPE_SIZES = {16: 1, 20: 8, 21: 2, 23: 4, 26: 4, 700: 4, 701: 8, 1082: 4, 1114: 8, 1184: 8}


def row_description(columns: Sequence[ColumnSpec], formats: Sequence[int] = ()) -> bytes:
    body = bytearray(struct.pack("!H", len(columns)))
    for i, col in enumerate(columns):
        size = col.type_size if col.type_size != -1 else _TYPE_SIZES.get(col.type_oid, -1)
        body += cstr(col.name) + struct.pack("!IhIhih", 0, 0, col.type_oid, size, col.type_mod,
                                            result_format(formats, i))
    return message(b"T", bytes(body))


def decode_row_description(payload: bytes) -> list[ColumnSpec]:
    (count,) = struct.unpack_from("!H", payload, 0)
    pos = 2
    cols: list[ColumnSpec] = []
    for _ in range(count):
        end = payload.index(b"\x00", pos)
        name = payload[pos:end].decode("utf-8", "replace")
        _table, _attr, oid, size, mod, _fmt = struct.unpack_from("!IhIhih", payload, end + 1)
        cols.append(ColumnSpec(name, oid, size, mod))
        pos = end + 1 + 18
    return cols


def result_format(formats: Sequence[int], index: int) -> int:
    """Bind's result format rule: none → text, one → all, else per column."""
    if not formats:
        return 0
    return formats[0] if len(formats) == 1 else formats[index]


def data_row(values: Sequence[bytes | None]) -> bytes:
    body = bytearray(struct.pack("!H", len(values)))
    for v in values:
        if v is None:
            body += struct.pack("!i", -1)
        else:
            body += struct.pack("!i", len(v)) + v
    return message(b"D", bytes(body))


def decode_data_row(payload: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack_from("!H", payload, 0)
    pos = 2
    out: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        if size < 0:
            out.append(None)
        else:
            out.append(payload[pos:pos + size].decode("utf-8", "replace"))
            pos += size
    return tuple(out)


_TEXTLIKE = {18, 19, 25, 705, 1042, 1043}
_PG_EPOCH_DATE = date(2000, 1, 1)
_PG_EPOCH = datetime(2000, 1, 1)


def encode_value(text: str | None, type_oid: int, fmt: int) -> bytes | None:
    """A text value in the wire format the client asked for (binary only for common scalar types)."""
    if text is None:
        return None
    if fmt == 0 or type_oid in _TEXTLIKE:
        return text.encode("utf-8")
    if type_oid == 16:
        return b"\x01" if text.lower() in ("t", "true", "1", "yes", "on") else b"\x00"
    if type_oid in (20, 21, 23, 26):
        return struct.pack({20: "!q", 21: "!h", 23: "!i", 26: "!I"}[type_oid], int(text))
    if type_oid in (700, 701):
        return struct.pack("!f" if type_oid == 700 else "!d", float(text))
    if type_oid == 1082:
        return struct.pack("!i", (date.fromisoformat(text) - _PG_EPOCH_DATE).days)
    if type_oid in (1114, 1184):
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        delta = moment - _PG_EPOCH
        return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    raise ValueError(f"cannot send type oid {type_oid} in binary format")


# ---------------------------------------------------------------- client → backend

def query(sql: str) -> bytes:
    return message(b"Q", cstr(sql))


def copy_data(chunk: bytes) -> bytes:
    return message(b"d", chunk)


def copy_fail(reason: str) -> bytes:
    return message(b"f", cstr(reason))


def _cstring_at(payload: bytes, pos: int) -> tuple[str, int]:
    end = payload.index(b"\x00", pos)
    return payload[pos:end].decode("utf-8", "replace"), end + 1


def decode_query(payload: bytes) -> str:
    return _cstring_at(payload, 0)[0]


@dataclass
class Parse:
    statement: str
    sql: str
    param_oids: list[int] = field(default_factory=list)


def decode_parse(payload: bytes) -> Parse:
    name, pos = _cstring_at(payload, 0)
    sql, pos = _cstring_at(payload, pos)
    (count,) = struct.unpack_from("!H", payload, pos)
    oids = list(struct.unpack_from(f"!{count}I", payload, pos + 2)) if count else []
    return Parse(name, sql, oids)


def parse_payload(parse: Parse) -> bytes:
    """The payload of a Parse message (the inverse of decode_parse)."""
    oids = struct.pack(f"!H{len(parse.param_oids)}I", len(parse.param_oids), *parse.param_oids)
    return cstr(parse.statement) + cstr(parse.sql) + oids


@dataclass
class Bind:
    portal: str
    statement: str
    result_formats: list[int]


def decode_bind(payload: bytes) -> Bind:
    portal, pos = _cstring_at(payload, 0)
    statement, pos = _cstring_at(payload, pos)
    (nfmt,) = struct.unpack_from("!H", payload, pos)
    pos += 2 + 2 * nfmt
    (nparams,) = struct.unpack_from("!H", payload, pos)
    pos += 2
    for _ in range(nparams):
        (size,) = struct.unpack_from("!i", payload, pos)
        pos += 4 + max(size, 0)
    (nres,) = struct.unpack_from("!H", payload, pos)
    formats = list(struct.unpack_from(f"!{nres}h", payload, pos + 2)) if nres else []
    return Bind(portal, statement, formats)


def decode_target(payload: bytes) -> tuple[str, str]:
    """Describe/Close: ('S' or 'P', name)."""
    return chr(payload[0]), _cstring_at(payload, 1)[0]


def decode_execute(payload: bytes) -> tuple[str, int]:
    portal, pos = _cstring_at(payload, 0)
    (max_rows,) = struct.unpack_from("!i", payload, pos)
    return portal, max_rows
