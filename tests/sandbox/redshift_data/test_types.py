"""VARBYTE, SUPER and TIMESTAMPTZ through UNLOAD and COPY ("VARBYTE type", "SUPER type",
"UNLOAD" usage notes, "Loading a column of the VARBYTE data type")."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift import catalog
from migrator.sandbox.redshift.dialect import RedshiftDialect
from tests.sandbox.redshift_data.conftest import BUCKET, ROLE, Env


def ddl(env: Env, sql: str) -> None:
    intercept = RedshiftDialect().classify(sql, env.session)
    assert intercept is not None
    intercept.execute(env.backend, env.session)


def body(env: Env, prefix: str) -> str:
    keys = [k for k in env.keys(env.prefix + prefix) if not k.endswith("manifest")]
    return b"".join(env.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys).decode()


@pytest.fixture
def typed(env: Env) -> Env:
    catalog.install(env.conn, "src")
    ddl(env, "create table h (id int, b varbyte(16), s super)")
    env.run("insert into h values (1, from_hex('00ff61'), json_parse('{\"a\": 1}')),"
            " (2, from_hex(''), json_parse('null')), (3, null, null)")
    return env


def test_catalog_names_and_functions(typed: Env) -> None:
    env = typed
    types = env.backend.query("select \"column\", type from pg_table_def where tablename = 'h' order by 1").rows
    assert types == [("b", "varbyte"), ("id", "integer"), ("s", "super")]
    assert env.scalar("select to_hex(b) from h where id = 1") == "00ff61"
    # JSON null is a value, SQL NULL is not.
    assert env.scalar("select count(*) from h where s is null") == "1"
    assert env.scalar("select json_serialize(s) from h where id = 2") == "null"


def test_varchar_results_stop_at_65535_bytes(typed: Env) -> None:
    """TO_HEX and JSON_SERIALIZE return VARCHAR (65535 bytes at most, "Character types"):
    JSON_SERIALIZE "returns an error when the JSON format exceeds the VARCHAR limit"; 32768 bytes
    of VARBYTE are 65536 hex characters. JSON_SERIALIZE_TO_VARBYTE has no such limit, and
    JSON_SERIALIZE of SQL NULL is the text 'null' ("JSON_SERIALIZE", return type)."""
    env = typed
    assert env.scalar("select octet_length(to_hex(decode(repeat('ab', 32767), 'hex')))") == "65534"
    with pytest.raises(BackendError) as err:
        env.scalar("select to_hex(decode(repeat('ab', 32768), 'hex'))")
    assert "65535" in err.value.message
    big = "json_parse('\"' || repeat('x', 70000) || '\"')"
    with pytest.raises(BackendError) as err:
        env.scalar(f"select json_serialize({big})")
    assert "JSON_SERIALIZE" in err.value.message and "65535" in err.value.message
    assert env.scalar(f"select octet_length(json_serialize_to_varbyte({big}))") == "70002"
    assert env.scalar("select json_serialize(s) from h where id = 3") == "null"  # SQL NULL


def test_spatial_values_are_ewkb_and_st_asewkb_takes_geometry_only(env: Env) -> None:
    """GEOMETRY/GEOGRAPHY hold EWKB; ST_AsEWKB takes GEOMETRY ("ST_AsEWKB"), a GEOGRAPHY goes
    through a cast that copies the coordinates ("Querying spatial data"); UNLOAD writes hex EWKB."""
    catalog.install(env.conn, "src")
    ddl(env, "create table sp (id int, g geometry, gg geography)")
    point = "0101000020E61000000000000000002440" + "0000000000003440"
    env.run(f"insert into sp values (1, st_geomfromewkb(from_hex('{point}')), st_geogfromwkb(from_hex('{point}')))")
    assert env.scalar("select upper(to_hex(st_asewkb(g))) from sp") == point
    with pytest.raises(BackendError) as err:
        env.scalar("select st_asewkb(gg) from sp")
    assert err.value.sqlstate == "42883"
    assert env.scalar("select upper(to_hex(st_asewkb(cast(gg as geometry)))) from sp") == point
    env.run(f"unload ('select id, g from sp') to '{env.url('sp_')}' iam_role '{ROLE}' parallel off csv")
    assert body(env, "sp_").splitlines() == [f"1,{point}"]


def test_varbyte_unloads_as_hex_and_only_to_text_or_csv(typed: Env) -> None:
    env = typed
    env.run(f"unload ('select id, b from h order by id') to '{env.url('vb_')}' iam_role '{ROLE}' parallel off csv")
    assert body(env, "vb_").splitlines() == ["1,00ff61", "2,", "3,"]
    with pytest.raises(BackendError) as err:
        env.run(f"unload ('select b from h') to '{env.url('vp_')}' iam_role '{ROLE}' parquet")
    assert "VARBYTE" in err.value.message
    assert env.keys(env.prefix + "vp_") == []


def test_super_null_and_json_null_both_unload_as_null(typed: Env) -> None:
    env = typed
    env.run(f"unload ('select id, s from h order by id') to '{env.url('su_')}' iam_role '{ROLE}' "
            "parallel off null as 'NIL'")
    assert body(env, "su_").splitlines() == ['1|{"a": 1}', "2|null", "3|null"]


def test_copy_varbyte_from_csv_only_and_not_with_removequotes(typed: Env) -> None:
    env = typed
    ddl(env, "create table h2 (id int, b varbyte, s super)")
    env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}in/a.csv", Body=b'1,00ff61,"{""x"": [1]}"\n2,,null\n')
    env.run(f"copy h2 from '{env.url('in/')}' iam_role '{ROLE}' csv")
    assert env.backend.query("select id, to_hex(b), json_serialize(s), s is null from h2 order by id").rows == [
        ("1", "00ff61", '{"x": [1]}', "f"), ("2", None, "null", "f")]
    env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}txt/a", Body=b"3|00\n")
    with pytest.raises(BackendError) as err:
        env.run(f"copy h2 from '{env.url('txt/')}' iam_role '{ROLE}'")
    assert "CSV, Parquet or ORC" in err.value.message
    with pytest.raises(BackendError) as err:
        env.run(f"copy h2 from '{env.url('txt/')}' iam_role '{ROLE}' removequotes")
    env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}bad/a.csv", Body=b"4,zz,null\n")
    with pytest.raises(BackendError):
        env.run(f"copy h2 from '{env.url('bad/')}' iam_role '{ROLE}' csv")
    assert "Invalid hex" in env.load_errors[-1][4]


def test_timestamptz_in_parquet_loses_its_zone(env: Env) -> None:
    env.run("set timezone = 'America/New_York'")
    env.run("create table tz (t timestamptz)")
    env.run("insert into tz values ('2024-03-01 12:00:00+02')")
    env.run(f"unload ('select t from tz') to '{env.url('tz_')}' iam_role '{ROLE}' parquet manifest verbose")
    manifest = json.loads(env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}tz_manifest")["Body"].read())
    key = manifest["entries"][0]["url"].split(f"{BUCKET}/", 1)[1]
    table = pq.read_table(io.BytesIO(env.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert table.schema.field("t").type.tz is None
    assert table.column("t").to_pylist() == [datetime(2024, 3, 1, 10, 0, 0)]


def test_parquet_timestamp_loads_into_timestamptz_as_utc(env: Env) -> None:
    env.run("create table tz1 (t timestamptz)")
    env.run("insert into tz1 values ('2024-03-01 12:00:00+02')")
    env.run(f"unload ('select t from tz1') to '{env.url('tzl_')}' iam_role '{ROLE}' parquet manifest")
    env.run("set timezone = 'Asia/Tokyo'")
    env.run("create table tz2 (t timestamptz)")
    env.run(f"copy tz2 from '{env.url('tzl_manifest')}' iam_role '{ROLE}' parquet manifest")
    assert env.scalar("select count(*) from tz1 join tz2 using (t)") == "1"
