"""UNLOAD: file layout, manifest, destination rules, option conflicts, encryption, faults."""

from __future__ import annotations

import gzip
import json

import pytest

from migrator.sandbox.interfaces import BackendError
from tests.sandbox.redshift_data.conftest import BUCKET, ROLE, Env


def seed(env: Env, rows: int = 40) -> None:
    env.run("create table t (id int, name varchar(20))")
    env.run(f"insert into t select g, 'name ' || g from generate_series(1, {rows}) g")


def unload(env: Env, name: str, options: str = "", query: str = "select * from t") -> None:
    quoted = query.replace("'", "''")
    env.run(f"unload ('{quoted}') to '{env.url(name)}' iam_role '{ROLE}' {options}")


def test_parallel_on_writes_one_part_per_slice_and_plain_manifest(env: Env) -> None:
    seed(env)
    unload(env, "par_", "manifest")
    assert env.keys() == [f"{env.prefix}par_{s:04d}_part_00" for s in range(4)] + [f"{env.prefix}par_manifest"]
    manifest = json.loads(env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}par_manifest")["Body"].read())
    sizes = [env.s3.head_object(Bucket=BUCKET, Key=f"{env.prefix}par_{s:04d}_part_00")["ContentLength"]
             for s in range(4)]
    assert manifest == {"entries": [{"url": env.url(f"par_{s:04d}_part_00"), "meta": {"content_length": sizes[s]}}
                                    for s in range(4)]}
    lines = []
    for s in range(4):
        body = env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}par_{s:04d}_part_00")["Body"].read().decode()
        assert body, "each slice got rows"
        lines += body.splitlines()
    assert sorted(lines, key=lambda l: int(l.split("|")[0])) == [f"{i}|name {i}" for i in range(1, 41)]
    assert env.scalar("select current_setting('redshift.last_unload_count')") == "40"
    assert [(u[2], u[3]) for u in env.unloads] == [(env.url(f"par_{s:04d}_part_00"), 10) for s in range(4)]


def test_parallel_off_single_file_with_gzip_suffix_and_sse_s3(env: Env) -> None:
    seed(env)
    unload(env, "one_", "parallel off gzip header delimiter ','")
    assert env.keys() == [f"{env.prefix}one_0000_part_00.gz"]
    obj = env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}one_0000_part_00.gz")
    assert obj["ServerSideEncryption"] == "AES256"
    text = gzip.decompress(obj["Body"].read()).decode()
    assert text.splitlines()[:2] == ["id,name", "1,name 1"]


def test_extension_and_maxfilesize_split(env: Env) -> None:
    env.run("create table big (id int, pad text)")
    env.run("insert into big select g, repeat('x', 1000) from generate_series(1, 12000) g")
    unload(env, "big_", "parallel off maxfilesize 5 mb extension 'txt'", "select * from big")
    keys = env.keys()
    assert keys == [f"{env.prefix}big_0000_part_{p:02d}.txt" for p in range(3)]
    sizes = [env.s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in keys]
    assert all(size <= 5 * 1024 * 1024 for size in sizes)


def test_destination_not_empty_fails_cleanpath_cleans_allowoverwrite_overwrites(env: Env) -> None:
    seed(env)
    env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}d_stale", Body=b"old")
    env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}d_0007_part_00", Body=b"old")
    with pytest.raises(BackendError) as err:
        unload(env, "d_")
    assert "Specified unload destination on S3 is not empty" in err.value.message
    unload(env, "d_", "cleanpath")
    assert env.keys() == [f"{env.prefix}d_{s:04d}_part_00" for s in range(4)]
    unload(env, "d_", "allowoverwrite parallel off")
    assert len(env.keys()) == 4


def test_cleanpath_deletes_every_page(env: Env) -> None:
    seed(env, 2)
    for n in range(1001):  # one more than a listing page
        env.s3.put_object(Bucket=BUCKET, Key=f"{env.prefix}many_x{n:05d}", Body=b"")
    unload(env, "many_", "cleanpath parallel off")
    assert env.keys() == [f"{env.prefix}many_0000_part_00"]


@pytest.mark.parametrize("options, message", [
    ("allowoverwrite cleanpath", "ALLOWOVERWRITE and CLEANPATH"),
    ("parquet delimiter ','", "DELIMITER"),
    ("parquet gzip", "compression"),
    ("parquet header", "HEADER"),
    ("parquet null as 'x'", "NULL AS"),
    ("format csv addquotes", "ADDQUOTES"),
    ("format csv escape", "ESCAPE"),
    ("kms_key_id 'abc'", "KMS_KEY_ID"),
    ("maxfilesize 1 mb", "MAXFILESIZE"),
    ("gzip bzip2", "redundant"),
])
def test_option_conflicts_error(env: Env, options: str, message: str) -> None:
    with pytest.raises(BackendError) as err:
        env.statements.classify(f"unload ('select 1') to '{env.url('x_')}' iam_role '{ROLE}' {options}")
    assert message in err.value.message


def test_iam_role_required_and_checked(env: Env) -> None:
    seed(env)
    with pytest.raises(BackendError):
        env.run(f"unload ('select * from t') to '{env.url('r_')}'")
    with pytest.raises(BackendError) as err:
        env.run(f"unload ('select * from t') to '{env.url('r_')}' iam_role 'arn:aws:iam::1:role/Other'")
    assert "not authorized to assume IAM Role" in err.value.message
    assert env.keys() == []


def test_encrypted_with_kms_key_stores_sse_kms(env: Env) -> None:
    seed(env)
    key_id = env.kms.create_key()["KeyMetadata"]["KeyId"]
    unload(env, "enc_", f"encrypted kms_key_id '{key_id}' manifest")
    parquet_key = env.kms.create_key()["KeyMetadata"]["KeyId"]
    unload(env, "encp_", f"format parquet encrypted kms_key_id '{parquet_key}'")
    for name, key in (("enc_", key_id), ("encp_", parquet_key)):
        keys = env.keys(env.prefix + name)
        assert keys
        for k in keys:
            head = env.s3.head_object(Bucket=BUCKET, Key=k)
            assert head["ServerSideEncryption"] == "aws:kms"
            assert head["SSEKMSKeyId"].endswith(key)


def test_unknown_and_disabled_kms_keys_fail_before_writing(env: Env) -> None:
    seed(env)
    with pytest.raises(BackendError) as err:
        unload(env, "bad_", "encrypted kms_key_id '11111111-2222-3333-4444-555555555555'")
    assert "KMS.NotFoundException" in err.value.message
    key_id = env.kms.create_key()["KeyMetadata"]["KeyId"]
    env.kms.disable_key(KeyId=key_id)
    with pytest.raises(BackendError) as err:
        unload(env, "bad_", f"encrypted kms_key_id '{key_id}'")
    assert "disabled" in err.value.message
    assert env.keys() == []


def test_sql_error_fault_fires(env: Env) -> None:
    seed(env)
    env.faults.add("sql_error", match={"statement": "unload", "table": env.url("f_")},
                   sqlstate="XX000", message="injected unload failure")
    with pytest.raises(BackendError) as err:
        unload(env, "f_")
    assert err.value.message == "injected unload failure"
    assert env.keys() == []
    assert [f["attrs"]["statement"] for f in env.faults.fired("sql_error")] == ["unload"]
    unload(env, "f_")  # the fault fired once
    assert len(env.keys()) == 4


def test_query_quotes_and_empty_result(env: Env) -> None:
    seed(env, 3)
    env.run(r"unload ('select name from t where name = ''name 2'' or name = \'name 3\'') "
            f"to '{env.url('q_')}' iam_role '{ROLE}' parallel off")
    body = env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}q_0000_part_00")["Body"].read()
    assert sorted(body.decode().splitlines()) == ["name 2", "name 3"]
    unload(env, "none_", "format parquet manifest verbose", "select * from t where false")
    manifest = json.loads(env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}none_manifest")["Body"].read())
    assert manifest["entries"] == [] and manifest["meta"] == {"content_length": 0, "record_count": 0}


def test_copy_stdin_and_stdout_pass_through(env: Env) -> None:
    assert env.statements.classify("copy t from stdin", env.session) is None
    assert env.statements.classify("COPY t (a, b) TO STDOUT WITH (FORMAT csv)", env.session) is None
    assert env.statements.classify("copy (select 1) to stdout", env.session) is None
    assert env.statements.classify("select 'unload'", env.session) is None


def test_manifest_verbose_counts_header_lines_and_sizes(env: Env) -> None:
    seed(env, rows=8)
    unload(env, "vb_", "manifest verbose header csv")
    manifest = json.loads(env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}vb_manifest")["Body"].read())
    files = [f"{env.prefix}vb_{s:04d}_part_00" for s in range(4)]
    sizes = [env.s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in files]
    # Two rows per slice, plus each file's header line ("UNLOAD", MANIFEST VERBOSE).
    assert manifest["entries"] == [{"url": f"s3://{BUCKET}/{k}", "meta": {"content_length": n, "record_count": 3}}
                                   for k, n in zip(files, sizes)]
    assert manifest["meta"] == {"content_length": sum(sizes), "record_count": 12}
    assert manifest["author"] == {"name": "Amazon Redshift", "version": "1.0.0"}
    assert [e["name"] for e in manifest["schema"]["elements"]] == ["id", "name"]


def test_limit_only_in_a_nested_select(env: Env) -> None:
    """"UNLOAD", Usage notes (Limit clause): the SELECT can't use LIMIT in its outer SELECT;
    a nested LIMIT is how a sample is unloaded."""
    seed(env, rows=5)
    for outer in ("select * from t limit 1", "select * from t order by 1 limit 1",
                  "select * from (select * from t) as s limit 1"):
        with pytest.raises(BackendError) as err:
            env.run(f"unload ('{outer}') to '{env.url('lim_')}' iam_role '{ROLE}' parallel off")
        assert err.value.sqlstate == "0A000" and "LIMIT" in err.value.message
    assert env.keys(env.prefix + "lim_") == []
    env.run(f"unload ('select * from (select * from t order by 1 limit 2) as s') to '{env.url('nest_')}' "
            f"iam_role '{ROLE}' parallel off")
    body = env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}nest_0000_part_00")["Body"].read()
    assert len(body.decode().splitlines()) == 2


def test_the_query_inside_unload_folds_quoted_names_as_the_session_does(env: Env) -> None:
    """The UNLOAD's query is SQL the cluster runs in the session ("Names and identifiers"):
    quoted names fold to lower case unless enable_case_sensitive_identifier is on."""
    seed(env, 3)
    unload(env, "fold_", "parallel off", 'select "ID", "Name" from "T" order by 1')
    body = env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}fold_0000_part_00")["Body"].read().decode()
    assert body.splitlines() == ["1|name 1", "2|name 2", "3|name 3"]
    env.session.case_sensitive = True
    try:
        with pytest.raises(BackendError) as err:
            unload(env, "kept_", "parallel off", 'select "ID" from "T"')
    finally:
        env.session.case_sensitive = False
    assert err.value.sqlstate == "42P01", err.value.message
