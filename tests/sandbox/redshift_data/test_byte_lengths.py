"""CHAR/VARCHAR lengths are bytes on Redshift ("Character types": "CHAR and VARCHAR data types
are defined in terms of bytes, not characters. A CHAR column can only contain single-byte
characters"); PostgreSQL counts characters, so the sandbox was looser than Redshift before it
counted bytes. INSERT, UPDATE, explicit CAST and COPY (text, CSV, Parquet) are covered."""

from __future__ import annotations

import pytest

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift import catalog
from migrator.sandbox.redshift.dialect import RedshiftDialect
from tests.sandbox.redshift_data.conftest import BUCKET, ROLE, Env

E5 = "é" * 5  # 5 characters, 10 bytes
E6 = "é" * 6  # 6 characters, 12 bytes: fits VARCHAR(10) by characters, not by bytes


def ddl(env: Env, sql: str) -> None:
    intercept = RedshiftDialect().classify(sql, env.session)
    assert intercept is not None
    intercept.execute(env.backend, env.session)


@pytest.fixture
def cat(env: Env) -> Env:
    catalog.install(env.conn, "src")
    ddl(env, "create table s (id int, v varchar(10), c char(4))")
    return env


def put(env: Env, name: str, body: bytes) -> str:
    env.s3.put_object(Bucket=BUCKET, Key=env.prefix + name, Body=body)
    return env.url(name)


def test_insert_and_update_count_bytes(cat: Env) -> None:
    env = cat
    env.run(f"insert into s (id, v) values (1, '{E5}')")  # exactly 10 bytes: fits
    with pytest.raises(BackendError) as err:
        env.run(f"insert into s (id, v) values (2, '{E6}')")
    assert (err.value.sqlstate, err.value.message) == ("22001", "value too long for type character varying(10)")
    with pytest.raises(BackendError):
        env.run(f"update s set v = '{E6}' where id = 1")
    # INSERT ... SELECT and a bound text value take the same rule.
    with pytest.raises(BackendError):
        env.run(f"insert into s (id, v) select 3, repeat('日', 4)")  # 12 bytes
    env.run("insert into s (id, v) select 4, repeat('日', 3)")  # 9 bytes
    # Extra characters that are all spaces are cut ("Significance of trailing blanks").
    env.run(f"insert into s (id, v) values (5, '{E5}   ')")
    assert env.scalar("select v from s where id = 5") == E5
    assert env.scalar("select count(*) from s") == "3"


def test_char_takes_single_byte_characters_only(cat: Env) -> None:
    env = cat
    env.run("insert into s (id, c) values (1, 'ab')")
    with pytest.raises(BackendError) as err:
        env.run("insert into s (id, c) values (2, 'é')")
    assert err.value.message == ("Multibyte character not supported for CHAR (Hint: Try using VARCHAR). "
                                 "Invalid char: c3 a9")
    with pytest.raises(BackendError):
        env.run("update s set c = 'ñ' where id = 1")


def test_ddl_limits_are_bytes(cat: Env) -> None:
    env = cat
    with pytest.raises(BackendError) as err:
        ddl(env, "create table w (v varchar(65536))")
    assert "65535" in err.value.message
    with pytest.raises(BackendError) as err:
        ddl(env, "create table w (c char(4097))")
    assert "4096" in err.value.message
    ddl(env, "create table w (v varchar(max), c char(max))")
    assert env.backend.query("select format_type(atttypid, atttypmod) from pg_attribute "
                             "where attrelid = 'w'::regclass and attnum > 0 order by attnum").rows == [
        ("character varying(65535)",), ("character(4096)",)]


def test_explicit_cast_truncates_to_whole_characters_within_the_bytes(cat: Env) -> None:
    env = cat
    assert env.scalar(f"select cast('{E6}' as varchar(10))") == E5
    assert env.scalar("select 'aé'::varchar(2)") == "a"  # é would end past byte 2: left out whole
    assert env.scalar("select 'abc'::varchar(2)") == "ab"
    # A value cast to the column's width then fits it (the documented workaround).
    env.run(f"insert into s (id, v) values (1, '{E6}'::varchar(10))")
    assert env.scalar("select octet_length(v) from s") == "10"


@pytest.mark.parametrize("fmt, body", [
    ("", f"1|{E6}\n".encode()),
    ("csv", f'1,"{E6}"\n'.encode()),
])
def test_copy_text_and_csv_count_bytes(cat: Env, fmt: str, body: bytes) -> None:
    env = cat
    put(env, f"t{fmt}/part", body)
    with pytest.raises(BackendError):
        env.run(f"copy s (id, v) from '{env.url(f't{fmt}/')}' iam_role '{ROLE}' {fmt}")
    reason = env.load_errors[-1][4]
    assert reason == "String length exceeds DDL length (12 > 10)"
    env.run(f"copy s (id, v) from '{env.url(f't{fmt}/')}' iam_role '{ROLE}' {fmt} truncatecolumns")
    assert env.scalar("select v from s") == E5


def test_copy_char_refuses_multibyte_with_error_1220(cat: Env) -> None:
    env = cat
    put(env, "c/part", "1|ñ\n".encode())
    with pytest.raises(BackendError):
        env.run(f"copy s (id, c) from '{env.url('c/')}' iam_role '{ROLE}'")
    assert env.load_errors[-1][4] == ("Multibyte character not supported for CHAR (Hint: Try using VARCHAR). "
                                      "Invalid char: c3 b1")


def test_copy_parquet_counts_bytes(cat: Env) -> None:
    env = cat
    ddl(env, "create table wide (id int, v varchar(40))")
    env.run(f"insert into wide values (1, '{E6}')")
    env.run(f"unload ('select id, v from wide') to '{env.url('pq_')}' iam_role '{ROLE}' format parquet")
    with pytest.raises(BackendError):
        env.run(f"copy s (id, v) from '{env.url('pq_')}' iam_role '{ROLE}' format parquet")
    assert env.load_errors[-1][4] == "String length exceeds DDL length (12 > 10)"
    ddl(env, "create table fits (id int, v varchar(12))")
    env.run(f"copy fits from '{env.url('pq_')}' iam_role '{ROLE}' format parquet")
    assert env.scalar("select v from fits") == E6
