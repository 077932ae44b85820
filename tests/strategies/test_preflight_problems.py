"""Preflight, for every strategy, finds what a later phase would fail on, each problem one line,
listed once, exit 7, nothing changed (issue 10 §2.4, issue 9 item 2.14)."""

from __future__ import annotations

from pathlib import Path
import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import make_cluster, migration, one_line, wait_for


def account_block(sb: Sandbox, on: bool) -> None:
    """Set or remove the account-level public access block (S3 Control, host prefix stripped for the sandbox)."""
    from migrator.strategies.preflight_checks import _strip_account_prefix

    client = sb.client("s3control")
    client.meta.events.register("before-sign.s3-control", _strip_account_prefix)
    account = sb.client("sts").get_caller_identity()["Account"]
    if on:
        client.put_public_access_block(AccountId=account, PublicAccessBlockConfiguration={
            k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
    else:
        client.delete_public_access_block(AccountId=account)


def test_unload_copy_lists_every_later_failure_once(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "pf-uc", tables=1)
    sb.client("redshift").enable_snapshot_copy(ClusterIdentifier="pf-uc", DestinationRegion="us-west-2",
                                               RetentionPeriod=2)
    sb.client("s3").create_bucket(Bucket="pf-open-staging")
    m = migration(sb, tmp_path, "pf-uc", strategy="unload-copy", cluster_id="pf-uc-enc", encryption=None,
                  iam_auth=True, staging={"s3_uri": "s3://pf-open-staging/pf/"})
    m.init()
    before = sb.calls()
    result = m.invoke("run", "-c", str(m.config))
    assert result.exit_code == 7, result.stderr + result.stdout
    line = one_line(result.stderr)
    assert "cross-region snapshot copy of pf-uc" in line  # cutover would be refused by AWS
    assert "GetClusterCredentials cannot issue credentials" in line and "target.password_env" in line
    assert "staging bucket pf-open-staging: public access is not fully blocked" in line
    assert line.count("cross-region snapshot copy of pf-uc") == 1
    assert sb.calls() == before


def test_an_account_level_block_covers_a_bucket_without_its_own(sb: Sandbox, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    from migrator.aws.clients import AwsClients
    from migrator.strategies.preflight_checks import staging_problems

    sb.client("s3").create_bucket(Bucket="pf-account-covered")
    for key, value in sb.admin_env().items():  # the check itself, not a migration's policy
        monkeypatch.setenv(key, value)
    client_set = AwsClients(sb.info.region, sb.info.endpoint_url)
    assert staging_problems(client_set, "pf-account-covered")
    account_block(sb, True)
    try:
        assert staging_problems(client_set, "pf-account-covered") == []
    finally:
        account_block(sb, False)


@pytest.mark.parametrize("strategy", ["modify", "snapshot-restore"])
def test_a_paused_source_is_reported_with_what_to_do(sb: Sandbox, tmp_path: Path, strategy: str) -> None:
    cluster_id = f"pf-paused-{strategy[:4]}"
    make_cluster(sb, cluster_id, tables=0)
    rs = sb.client("redshift")
    rs.pause_cluster(ClusterIdentifier=cluster_id)
    wait_for(lambda: rs.describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]["ClusterStatus"] == "paused",
             "the pause")
    m = migration(sb, tmp_path, cluster_id, strategy=strategy, cluster_id=f"{cluster_id}-enc")
    m.init()
    result = m.invoke("run", "-c", str(m.config), "--assume-frozen")
    assert result.exit_code == 7, result.stderr + result.stdout
    line = one_line(result.stderr)
    assert f"cluster {cluster_id} is paused: resume it" in line and "resume-cluster" in line


def test_a_non_superuser_hears_which_grants_it_lacks(sb: Sandbox) -> None:
    from migrator.strategies.preflight_checks import access_lines
    from migrator.warehouse.connection import Session

    make_cluster(sb, "pf-user", tables=1)
    with Session.of(sb.connect("pf-user", autocommit=True)) as admin:
        assert access_lines(admin, "source") == []
        admin.run("create user \"pf reader\" password 'Readonly1pass'")
    with Session.of(sb.connect("pf-user", autocommit=True)) as regular:
        regular.run('set session authorization "pf reader"')
        lines = access_lines(regular, "source")
    assert any('GRANT SELECT ON stv_tbl_perm TO "pf reader"' in line for line in lines)
    assert any("SYSLOG ACCESS UNRESTRICTED" in line for line in lines)
    assert len(lines) == len(set(lines))
