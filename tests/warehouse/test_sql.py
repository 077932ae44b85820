"""Quoting/escaping and the generated SQL, parsed back with sqlglot's Redshift dialect.

sqlglot 30 parses COPY but not UNLOAD (it falls back to an opaque Command): for UNLOAD the
test unescapes the query literal and parses the query itself, and checks the options text.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from migrator.errors import ConfigError
from migrator.warehouse.inventory import ColumnInfo, TableInfo, parse_identity
from migrator.warehouse.replay.acl import parse_acl
from migrator.warehouse.replay.ddl import create_table_sql
from migrator.warehouse.replay.views import view_sql
from migrator.warehouse.sql import (
    CSV,
    COLUMNAR_COPY_PARAMETERS,
    PARQUET,
    PARQUET_UNLOAD_FORBIDDEN,
    TEXT,
    copy_sql,
    option_literal,
    qualified,
    quote_ident,
    select_all,
    staging_prefix,
    unload_query,
    unload_sql,
)
from migrator.warehouse import checksum
from migrator.warehouse.pipeline import choose_format

HOSTILE = 'a"b; drop table x'
ROLE = "arn:aws:iam::123456789012:role/RedshiftUnloadCopy"


def unescape(literal: str) -> str:
    assert literal.startswith("'") and literal.endswith("'")
    return re.sub(r"''|\\\\|\\'", lambda m: {"''": "'", "\\\\": "\\", "\\'": "'"}[m.group(0)], literal[1:-1])


def test_quote_ident_keeps_hostile_names_whole() -> None:
    assert quote_ident(HOSTILE) == '"a""b; drop table x"'
    tree = sqlglot.parse_one(f"select * from {qualified('s p', HOSTILE)}", read="redshift")
    table = tree.find(exp.Table)
    assert table is not None and table.name == HOSTILE and table.db == "s p"
    assert len(sqlglot.parse(f"delete from {qualified('x', HOSTILE)}", read="redshift")) == 1
    with pytest.raises(ValueError):
        quote_ident("nul\x00")
    with pytest.raises(ValueError):
        quote_ident("")


@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "\\N", "'; drop table x; --", "日本\n"])
def test_option_literal_round_trips(value: str) -> None:
    lit = option_literal(value)
    assert unescape(lit) == value
    # The literal is one string token to sqlglot too (no statement break-out).
    tree = sqlglot.parse_one(f"select {lit.replace(chr(92) * 2, chr(92))}", read="postgres")
    assert isinstance(tree.expressions[0], exp.Literal)


def test_unload_sql_golden() -> None:
    query = select_all("Ops Data", HOSTILE, ["id", "it's"])
    sql = unload_sql(query, "s3://bucket/stage/m1/x/attempt-1/", iam_role_arn=ROLE,
                     kms_key_id="alias/k", fmt=PARQUET)
    m = re.match(r"^UNLOAD \(('(?:[^'\\]|''|\\.)*')\) TO 's3://bucket/stage/m1/x/attempt-1/' (.*)$", sql)
    assert m, sql
    inner = unescape(m.group(1))
    assert inner == query
    tree = sqlglot.parse_one(inner, read="redshift")
    assert tree.find(exp.Table).name == HOSTILE  # type: ignore[union-attr]
    assert [c.name for c in tree.expressions] == ["id", "it's"]
    assert m.group(2) == (f"IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST VERBOSE ENCRYPTED KMS_KEY_ID 'alias/k' "
                          "CLEANPATH PARALLEL ON")
    text = unload_sql(query, "s3://bucket/p/", iam_role_arn=ROLE, kms_key_id="alias/k", fmt=TEXT,
                      max_file_bytes=64 * 1024 ** 2)
    # Never one unsplittable GZIP stream: uncompressed text, every slice writing files of at most MAXFILESIZE.
    assert "DELIMITER AS '|' ESCAPE NULL AS '\\\\N' MANIFEST" in text and "ADDQUOTES" not in text
    assert "GZIP" not in text and text.endswith("PARALLEL ON MAXFILESIZE 64 MB")
    for forbidden in ("ACCESS_KEY", "SECRET", "CREDENTIALS", "TOKEN"):
        assert forbidden not in sql.upper() and forbidden not in text.upper()


def test_copy_sql_golden_parses() -> None:
    sql = copy_sql("Ops Data", HOSTILE, "s3://bucket/p/manifest", iam_role_arn=ROLE, fmt=TEXT, explicit_ids=True)
    tree = sqlglot.parse_one(sql, read="redshift")
    assert isinstance(tree, exp.Copy)
    assert tree.this.name == HOSTILE and tree.this.db == "Ops Data"
    assert sql.endswith("MANIFEST DELIMITER AS '|' ESCAPE NULL AS '\\\\N' EXPLICIT_IDS "
                        "COMPUPDATE OFF STATUPDATE OFF")
    assert " ENCRYPTED" not in sql  # SSE-KMS files: ENCRYPTED would mean client-side encryption
    parquet = copy_sql("s", "t", "s3://bucket/p/manifest", iam_role_arn=ROLE, fmt=PARQUET, explicit_ids=False)
    assert isinstance(sqlglot.parse_one(parquet, read="redshift"), exp.Copy)
    assert "EXPLICIT_IDS" not in parquet
    ids = copy_sql("s", "t", "s3://bucket/p/manifest", iam_role_arn=ROLE, fmt=PARQUET, explicit_ids=True)
    assert ids.endswith("FORMAT AS PARQUET EXPLICIT_IDS STATUPDATE OFF")
    assert set(_options(ids)) <= set(COLUMNAR_COPY_PARAMETERS) | {"PARQUET"}, ids


def _options(sql: str) -> list[str]:
    """The option words of a COPY/UNLOAD after its literals are blanked."""
    text = re.sub(r"'(?:[^'\\]|''|\\.)*'", "''", sql)
    text = "FROM " + text.split(" FROM ", 1)[1] if text.startswith("COPY ") else text.split(") TO ", 1)[1]
    return [w for w in re.findall(r"[A-Z_]+", text) if w not in ("AS", "OFF", "ON", "VERBOSE")]


def test_parquet_option_sets_are_exactly_the_documented_ones() -> None:
    """COPY from columnar files takes only FROM, IAM_ROLE/CREDENTIALS, STATUPDATE, MANIFEST
    (and ACCEPTINVCHARS); UNLOAD to Parquet refuses every text option and compression."""
    copy = copy_sql("Ops Data", HOSTILE, "s3://bucket/p/manifest", iam_role_arn=ROLE, fmt=PARQUET,
                    explicit_ids=False)
    assert set(_options(copy)) <= set(COLUMNAR_COPY_PARAMETERS) | {"PARQUET"}, copy
    assert "COMPUPDATE" not in copy
    unload = unload_sql("select 1", "s3://bucket/p/", iam_role_arn=ROLE, kms_key_id="alias/k", fmt=PARQUET)
    tail = unload.split(") TO ", 1)[1]
    for word in PARQUET_UNLOAD_FORBIDDEN:
        assert word not in tail, (word, tail)
    text_copy = copy_sql("s", "t", "s3://bucket/p/manifest", iam_role_arn=ROLE, fmt=TEXT, explicit_ids=False)
    text_unload = unload_sql("select 1", "s3://bucket/p/", iam_role_arn=ROLE, kms_key_id="alias/k", fmt=TEXT)
    for statement in (text_copy, text_unload):  # VARBYTE refuses both; ESCAPE makes them unneeded
        assert "ADDQUOTES" not in statement and "REMOVEQUOTES" not in statement


def test_unload_query_widens_real_and_serializes_super_on_text_only() -> None:
    cols = [("r", "real"), ("d", "double precision"), ("j", "super"), ("b", "varbyte(16)")]
    text = unload_query("s", "t", cols, TEXT)
    # JSON_SERIALIZE(NULL) is the text 'null' on Redshift: SQL NULL stays NULL (the NULL AS marker).
    assert text == ('SELECT CAST("r" AS DOUBLE PRECISION) AS "r", "d", '
                    'CASE WHEN "j" IS NULL THEN NULL ELSE JSON_SERIALIZE("j") END AS "j", "b" FROM "s"."t"')
    assert unload_query("s", "t", cols, PARQUET) == 'SELECT "r", "d", "j", "b" FROM "s"."t"'
    tree = sqlglot.parse_one(text, read="redshift")
    assert [e.alias_or_name for e in tree.expressions] == ["r", "d", "j", "b"]
    # Through the load's stage: SUPER and VARBYTE go out as themselves (no VARCHAR limit), each
    # with its flag (SQL NULL for SUPER, empty for VARBYTE on CSV).
    staged = unload_query("s", "t", cols, CSV, staged=True)
    tree = sqlglot.parse_one(staged, read="redshift")
    names = [e.alias_or_name for e in tree.expressions]
    assert names[:4] == ["r", "d", "j", names[3]] and names[3].startswith("migrator_flag_")
    assert names[4] == "b" and names[5].startswith("migrator_flag_") and len(set(names)) == 6
    assert "JSON_SERIALIZE" not in staged and "OCTET_LENGTH(\"b\") = 0" in staged and '"j" IS NULL' in staged


def test_bad_paths_and_roles_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        unload_sql("select 1", "https://bucket/p/", iam_role_arn=ROLE, kms_key_id="k", fmt=PARQUET)
    with pytest.raises(ConfigError):
        copy_sql("s", "t", "s3://bucket/m", iam_role_arn="AKIA' secret", fmt=PARQUET, explicit_ids=False)


def test_staging_prefix_is_per_table_per_attempt_and_encoded() -> None:
    p = staging_prefix("s3://bucket/stage", "m 1", "Ops Data", "a/b", 3)
    assert p == "s3://bucket/stage/m%201/Ops%20Data.a%2Fb/attempt-3/"


def _table() -> TableInfo:
    cols = [ColumnInfo("id", "bigint", "az64", True, True, 1, identity=(1, 1)),
            ColumnInfo(HOSTILE, "character varying(20)", "none", False, False, -2, default="'x'::character varying"),
            ColumnInfo("t", "time without time zone", "none", False, False, 0)]
    return TableInfo("Ops Data", HOSTILE, 1, 10, 5, "KEY", "id", "INTERLEAVED", ["id", HOSTILE], False, False, cols)


def test_create_table_sql_golden() -> None:
    sql = create_table_sql(_table(), [("pk", "PRIMARY KEY (id)")])
    assert sql == (
        'CREATE TABLE "Ops Data"."a""b; drop table x" (\n'
        '    "id" bigint IDENTITY(1, 1) NOT NULL ENCODE AZ64,\n'
        '    "a""b; drop table x" character varying(20) DEFAULT \'x\'::character varying ENCODE RAW,\n'
        '    "t" time without time zone ENCODE RAW,\n'
        '    CONSTRAINT "pk" PRIMARY KEY (id)\n'
        ') BACKUP NO DISTSTYLE KEY DISTKEY ("id") INTERLEAVED SORTKEY ("id", "a""b; drop table x")')
    # sqlglot cannot parse Redshift's table attributes; the column part is standard SQL.
    head = sql.split(") BACKUP")[0].replace("IDENTITY(1, 1) ", "").replace(" ENCODE AZ64", "").replace(
        " ENCODE RAW", "") + ")"
    tree = sqlglot.parse_one(head, read="redshift")
    assert [c.name for c in tree.find_all(exp.ColumnDef)] == ["id", HOSTILE, "t"]


def test_format_choice_names_the_reason() -> None:
    fmt = choose_format(_table().columns)
    assert fmt.name == TEXT and "t (time without time zone)" in fmt.reason
    identity = choose_format(_table().columns[:2])  # COPY from Parquet takes EXPLICIT_IDS
    assert _table().columns[0].identity and identity.name == PARQUET
    assert choose_format(_table().columns[1:2]).name == PARQUET
    for type_name in ("super", "geometry"):
        assert choose_format([ColumnInfo("x", type_name, "none", False, False, 0)]).name == TEXT
    # COPY loads VARBYTE only from CSV (hex), Parquet or ORC; UNLOAD writes it only to text or CSV.
    binary = choose_format([ColumnInfo("x", "varbyte(64)", "none", False, False, 0)])
    assert binary.name == CSV and "NULL AS marker" in binary.reason


def test_checksum_hashes_binary_values_in_chunks_under_the_varchar_limit() -> None:
    """No VARCHAR in a checksum holds more than 64000 characters: VARBYTE, SUPER and spatial values
    go through TO_HEX 32000 bytes at a time; GEOGRAPHY is cast to GEOMETRY for ST_AsEWKB (which
    takes GEOMETRY only)."""
    cols = [ColumnInfo("b", "varbyte(100000)", "none", False, False, 0),
            ColumnInfo("j", "super", "none", False, False, 0),
            ColumnInfo("g", "geography", "none", False, False, 0),
            ColumnInfo("m", "geometry", "none", False, False, 0)]
    sql = checksum.checksum_sql("s", "t", cols)
    assert sqlglot.parse_one(checksum.checksum_sql("s", "t", cols[:1]), read="redshift") is not None
    assert "st_asewkb(cast(\"g\" as geometry))" in sql and "st_asewkb(\"m\")" in sql
    assert "json_serialize(" not in sql and "json_serialize_to_varbyte(\"j\")" in sql
    assert sql.count('substring("b", ') == 4  # ceil(100000 / 32000)
    assert 'substring("b", 96001, 32000)' in sql
    assert not re.search(r"varchar\(65535\)\)? *\|\|", sql)


def test_checksum_sql_parses_and_quotes() -> None:
    sql = checksum.checksum_sql("Ops Data", HOSTILE, _table().columns)
    tree = sqlglot.parse_one(sql, read="redshift")
    assert tree.find(exp.Table).name == HOSTILE  # type: ignore[union-attr]
    assert "decimal(38,0)" in sql.lower()


def test_parse_identity_and_acl() -> None:
    assert parse_identity("\"identity\"(100416, 0, '5,2'::text)") == (5, 2)
    assert parse_identity("'x'::text") is None
    acl = parse_acl('{awsuser=arwdDxt/awsuser,"group seed_readers=r/awsuser","Seed Reader"=r/awsuser,=U/awsuser}')
    assert [(e.grantee, e.privileges) for e in acl] == [
        ("awsuser", "arwdDxt"), ("seed_readers", "r"), ("Seed Reader", "r"), ("", "U")]


def test_view_sql_late_binding() -> None:
    assert view_sql("s", "v", " SELECT 1;", True) == 'CREATE VIEW "s"."v" AS SELECT 1 WITH NO SCHEMA BINDING'
    full = "create view s.v as select 1 with no schema binding"
    assert view_sql("s", "v", full, True) == full


def _pg_array(items: list[str]) -> str:
    """An aclitem[] as PostgreSQL prints it: elements with specials in quotes, \\ escapes."""
    def element(i: str) -> str:
        if re.search(r'[\s",{}\\]', i):
            return '"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return i
    return "{" + ",".join(element(i) for i in items) + "}"


def test_acl_names_with_slash_equals_quotes_never_widen_a_grant() -> None:
    grantee, grantor = 'ev=arwdD/il', 'x/y=arwdD"'
    item = f'{quote_ident(grantee)}=r/{quote_ident(grantor)}'
    for acl in (_pg_array([item, "bob=r/owner"]), [item, "bob=r/owner"]):
        entries = parse_acl(acl)
        assert [(e.grantee, e.privileges, e.grantor) for e in entries] == [
            (grantee, "r", grantor), ("bob", "r", "owner")]
    comma = quote_ident("a,b") + "=r/o"
    assert [(e.grantee, e.privileges) for e in parse_acl(_pg_array([comma]))] == [("a,b", "r")]
    group = parse_acl(_pg_array(['group "my grp"=rD/o']))
    assert [(e.grantee, e.privileges, e.group) for e in group] == [("my grp", "rD", True)]
    # Not an ACL item: left out, never guessed at.
    assert parse_acl(_pg_array(['"open=r/o', "=/"])) == []


def test_redshift_acl_letters_map_to_redshift_privileges() -> None:
    from migrator.warehouse.replay.acl import _TABLE_PRIVS

    assert _TABLE_PRIVS["D"] == "DROP" and _TABLE_PRIVS["x"] == "REFERENCES"


def test_max_file_size_makes_the_file_count_a_multiple_of_the_target_slices() -> None:
    from migrator.warehouse.sql import MIN_FILE_BYTES, files_per_slice, max_file_size

    assert files_per_slice(4, 2) == 1 and files_per_slice(2, 4) == 2 and files_per_slice(6, 4) == 2
    gb = 1024 ** 3
    size = max_file_size(2 * gb, source_slices=2, target_slices=16)
    assert size is not None
    per_slice = gb  # 2 GB over 2 slices, each writing ceil(1 GB / size) files
    files = 2 * -(-per_slice // size)
    assert files % 16 == 0, files
    assert max_file_size(10 * 1024 ** 2, 2, 4) is None  # too small for 5 MB files: one per slice
    assert max_file_size(10 ** 13, 2, 2) == int(6.2 * gb)
    assert max_file_size(200 * 1024 ** 2, 2, 2) >= MIN_FILE_BYTES


def test_range_predicates_cover_every_row_once_and_bind_their_bounds() -> None:
    from migrator.warehouse.sql import inline_predicate, range_predicate

    first = range_predicate("id", "bigint", None, "100", True)
    assert first == ('("id" < CAST(%s AS BIGINT) OR "id" IS NULL)', ["100"])
    assert range_predicate("id", "bigint", "100", None, False) == ('"id" >= CAST(%s AS BIGINT)', ["100"])
    assert range_predicate("d", "date", "2024-01-01", "2024-02-01", False)[1] == ["2024-01-01", "2024-02-01"]
    assert inline_predicate("x", "date", "it's", None, False) == '"x" >= CAST(\'it\'\'s\' AS DATE)'


def test_rehearsal_sample_nests_its_limit_inside_the_unload_query() -> None:
    """Redshift refuses LIMIT in UNLOAD's outer SELECT ("UNLOAD", Usage notes): the rehearsal's
    sample of a file-grouped table keeps it in a subquery; names quoted, the count an integer."""
    from migrator.warehouse.sql import first_rows_query, unload_query_over

    sample = first_rows_query("we'ird", 'no"tes', ["code", "bo dy"], 250)
    assert sample == 'SELECT "code", "bo dy" FROM "we\'ird"."no""tes" LIMIT 250'
    outer = unload_query_over(sample, [("code", "varchar(40)"), ("bo dy", "varchar(200)")], "parquet")
    assert outer.startswith('SELECT "code", "bo dy" FROM (SELECT') and outer.endswith(') AS "migrator_probe_sample"')
    assert first_rows_query("s", "t", ["c"], 0).endswith("LIMIT 1")
