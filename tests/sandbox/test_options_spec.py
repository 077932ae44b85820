"""The UNLOAD/COPY option table (migrator/sandbox/redshift/options.py): one entry per keyword and
statement, and the errors its rules give, in the order Redshift's checks meet them."""

from __future__ import annotations

import pytest

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift import options
from migrator.sandbox.redshift.options import COPY, OPTIONS, UNLOAD, Kind, parse_copy, parse_unload

AUTH = "iam_role 'arn:aws:iam::123456789012:role/r'"


def _unload(tail: str) -> str:
    return f"unload ('select 1') to 's3://bucket/prefix/' {AUTH} {tail}"


def _copy(tail: str) -> str:
    return f"copy public.t from 's3://bucket/prefix' {AUTH} {tail}"


def _error(parse: object, sql: str) -> tuple[str, str]:
    with pytest.raises(BackendError) as caught:
        parse(sql)  # type: ignore[operator]
    return caught.value.sqlstate, caught.value.message


def test_each_keyword_has_one_entry_per_statement_and_a_known_field() -> None:
    for statement, record in ((UNLOAD, options.UnloadOptions), (COPY, options.CopyOptions)):
        words = [o.word for o in OPTIONS if statement in o.statements]
        assert len(words) == len(set(words)), statement
        names = set(record.__dataclass_fields__)
        for option in OPTIONS:
            if statement in option.statements:
                assert option.attr is None or option.attr in names, (statement, option.word)
                if option.kind is Kind.UNSUPPORTED:
                    assert option.unsupported, option.word


def test_an_option_of_the_other_statement_is_a_syntax_error() -> None:
    assert _error(parse_unload, _unload("removequotes")) == ("42601", 'syntax error at or near "removequotes"')
    assert _error(parse_copy, _copy("addquotes")) == ("42601", 'syntax error at or near "addquotes"')


def test_values_are_read_as_their_kind() -> None:
    unload = parse_unload(_unload("format as parquet manifest verbose maxfilesize as 1 gb parallel off "
                                  "encrypted auto kms_key_id 'k' rowgroupsize 128"))
    assert (unload.format, unload.manifest, unload.verbose, unload.maxfilesize, unload.parallel) == (
        "PARQUET", True, True, 1024 ** 3, False)
    assert (unload.encrypted, unload.encrypted_auto, unload.kms_key_id, unload.rowgroupsize) == (
        True, True, "k", 128 * 1024 ** 2)
    copy = parse_copy(_copy("csv quote as '%' delimiter '\\t' compupdate preset acceptinvchars ignoreheader 2 gzip"))
    assert copy is not None
    assert (copy.format, copy.quote, copy.delimiter, copy.compupdate, copy.acceptinvchars, copy.ignoreheader,
            copy.compression) == ("CSV", "%", "\t", "PRESET", "?", 2, "GZIP")
    assert copy.used == {"iam_role", "format", "delimiter", "compupdate", "acceptinvchars", "ignoreheader",
                         "compression"}


@pytest.mark.parametrize(("tail", "error"), [
    ("gzip zstd", ("42601", "conflicting or redundant options: COMPRESSION specified more than once")),
    ("csv format json", ("42601", "conflicting or redundant options: FORMAT specified more than once")),
    ("fixedwidth", ("0A000", "FIXEDWIDTH is not supported by the sandbox UNLOAD")),
    ("allowoverwrite cleanpath kms_key_id 'k'", ("42601", "ALLOWOVERWRITE and CLEANPATH cannot be used together")),
    ("kms_key_id 'k' format parquet delimiter '|'", ("22023", "KMS_KEY_ID can only be used with the ENCRYPTED option")),
    ("parquet header delimiter '|'", ("22023", "DELIMITER is not supported for UNLOAD to PARQUET format")),
    ("parquet gzip", ("22023", "GZIP/BZIP2/ZSTD compression is not supported for UNLOAD to PARQUET format")),
    ("json null as 'x'", ("22023", "NULL AS is not supported for UNLOAD to JSON format")),
    ("csv escape addquotes rowgroupsize 1", ("22023", "ADDQUOTES cannot be used with FORMAT CSV in UNLOAD")),
    ("csv rowgroupsize 1", ("22023", "ROWGROUPSIZE can only be used with FORMAT PARQUET")),
])
def test_unload_errors_in_rule_order(tail: str, error: tuple[str, str]) -> None:
    assert _error(parse_unload, _unload(tail)) == error


@pytest.mark.parametrize(("tail", "error"), [
    ("json", ("0A000", "COPY from JSON is not supported by the sandbox")),
    ("format as avro", ("0A000", "COPY from AVRO is not supported by the sandbox")),
    ("format as xml", ("42601", 'syntax error at or near "xml"')),
    ("csv removequotes escape", ("22023", "CSV is not compatible with ESCAPE")),
    ("parquet null as 'x' delimiter '|'", ("22023", "DELIMITER argument is not supported for PARQUET based COPY")),
    ("parquet gzip", ("22023", "GZIP/BZIP2/ZSTD compression argument is not supported for PARQUET based COPY")),
    ("lzop", ("0A000", "LZOP is not supported by the sandbox COPY")),
])
def test_copy_errors_in_rule_order(tail: str, error: tuple[str, str]) -> None:
    assert _error(parse_copy, _copy(tail)) == error


def test_columnar_copy_takes_its_parameters() -> None:
    copy = parse_copy(_copy("format as parquet manifest explicit_ids statupdate off acceptinvchars fillrecord"))
    assert copy is not None and copy.format == "PARQUET"
