"""UNLOAD writes REAL/DOUBLE with the digits Redshift writes ("UNLOAD", "extra_float_digits"):
text and CSV follow the session's extra_float_digits, so a careless reload loses precision;
Parquet keeps the exact values."""

from __future__ import annotations

import io
import struct

import pyarrow.parquet as pq

from tests.sandbox.redshift_data.conftest import BUCKET, ROLE, Env

THIRD = 1.0 / 3.0
REAL_TENTH = struct.unpack("<f", struct.pack("<f", 0.1))[0]


def _setup(env: Env) -> None:
    env.run("create table f (r real, d double precision)")
    env.run("insert into f values (0.1, 1.0 / 3.0), (1.5e-7, 12345678.9012345678), (null, 'NaN')")


def _unload(env: Env, name: str, options: str) -> list[str]:
    env.run(f"unload ('select * from f order by d') to '{env.url(name)}' iam_role '{ROLE}' parallel off {options}")
    keys = [k for k in env.keys(env.prefix + name) if not k.endswith("manifest")]
    body = b"".join(env.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys)
    return body.decode().splitlines()


def test_text_unload_default_digits_lose_precision(env: Env) -> None:
    _setup(env)
    env.run("set extra_float_digits = 0")
    lines = _unload(env, "zero_", "")
    assert lines == ["0.1|0.333333333333333", "1.5e-07|12345678.9012346", "|NaN"]
    assert float(lines[0].split("|")[1]) != THIRD  # reloading this text does not give the value back
    # The session's own setting is left as it was.
    assert env.scalar("show extra_float_digits") == "0"


def test_csv_unload_with_two_extra_digits(env: Env) -> None:
    _setup(env)
    env.run("set extra_float_digits = 2")
    lines = _unload(env, "two_", "csv")
    assert lines[0] == "0.1,0.33333333333333331"
    assert lines[1] == "1.5000001e-07,12345678.901234567"  # REAL: FLT_DIG + 2 = 8 significant digits
    assert float(lines[0].split(",")[1]) == THIRD
    assert env.scalar("show extra_float_digits") == "2"


def test_parquet_unload_keeps_exact_floats(env: Env) -> None:
    _setup(env)
    env.run("set extra_float_digits = 0")
    env.run(f"unload ('select * from f order by d') to '{env.url('pq_')}' iam_role '{ROLE}' parallel off parquet")
    key = next(k for k in env.keys(env.prefix + "pq_"))
    table = pq.read_table(io.BytesIO(env.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert table.column("d").to_pylist()[0] == THIRD
    assert table.column("r").to_pylist()[0] == REAL_TENTH
