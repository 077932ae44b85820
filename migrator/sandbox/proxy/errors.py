"""Errors as Redshift words them: PostgreSQL's serialization failures become Redshift's error 1023."""

from __future__ import annotations

from migrator.sandbox import wire


SERIALIZATION_FAILURE = "40001"
#: Redshift reports a serialization conflict as error 1023 with SQLSTATE XX000 ("Isolation
#: levels in Amazon Redshift": "ERROR:1023 DETAIL: Serializable isolation violation on table").
REDSHIFT_ISOLATION_ERROR = ("XX000", "1023")


def redshift_error(sqlstate: str, message: str, detail: str | None) -> tuple[str, str, str | None]:
    """The error as Redshift words it; PostgreSQL's serialization failures become error 1023."""
    if sqlstate != SERIALIZATION_FAILURE:
        return sqlstate, message, detail
    code, text = REDSHIFT_ISOLATION_ERROR
    return code, text, ("Serializable isolation violation on table - 0, transactions forming the cycle are: "
                        f"unknown in the sandbox ({message})")


def redshift_error_payload(payload: bytes) -> bytes:
    fields = wire.decode_fields(payload)
    if fields.get("C") != SERIALIZATION_FAILURE:
        return payload
    sqlstate, text, detail = redshift_error(fields["C"], fields.get("M", ""), fields.get("D"))
    return wire.error_response(sqlstate, text, detail)[5:]
