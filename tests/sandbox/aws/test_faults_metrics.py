"""AWS-side fault injection seen through boto3, CloudWatch metrics, bootstrap."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from migrator.sandbox.faults import FaultPlan
from tests.sandbox.aws.support import FakeClock, Sleeps, new_cluster, status


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_s3_slowdown_is_a_retryable_503(sandbox: AwsSandbox, faults: FaultPlan, boot: dict[str, str]) -> None:
    bucket = boot["bucket"]
    faults.add("s3_slowdown", times=2, match={"operation": "PutObject", "bucket": bucket})
    single = sandbox.client("s3", max_attempts=1)
    with pytest.raises(ClientError) as exc:
        single.put_object(Bucket=bucket, Key="a/part-0000", Body=b"x" * 100)
    assert _code(exc) == "SlowDown"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # botocore's standard retry treats it as throttling: the second failure is retried to success
    retrying = sandbox.client("s3", max_attempts=3)
    out = retrying.put_object(Bucket=bucket, Key="a/part-0000", Body=b"y" * 100)
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert retrying.get_object(Bucket=bucket, Key="a/part-0000")["Body"].read() == b"y" * 100
    fired = faults.fired("s3_slowdown")
    assert [f["attrs"]["operation"] for f in fired[-2:]] == ["PutObject", "PutObject"]
    assert fired[-1]["attrs"]["key"] == "a/part-0000"


def test_s3_error_is_a_500_internal_error(sandbox: AwsSandbox, faults: FaultPlan, boot: dict[str, str]) -> None:
    bucket = boot["bucket"]
    s3 = sandbox.client("s3", max_attempts=1)
    s3.put_object(Bucket=bucket, Key="b/obj", Body=b"data")
    faults.add("s3_error", times=3, match={"operation": "GetObject"})
    faults.add("s3_error", match={"operation": "ListObjectsV2", "bucket": bucket})
    faults.add("s3_slowdown", match={"operation": "HeadObject"})
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="b/obj")
    assert _code(exc) == "InternalError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, Prefix="b/")
    assert _code(exc) == "InternalError"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="b/obj")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.list_objects_v2(Bucket=bucket, Prefix="b/")["KeyCount"] == 1  # that fault fired once
    assert {f["attrs"]["operation"] for f in faults.fired("s3_error")} >= {"GetObject", "ListObjectsV2"}


def test_kms_access_denied(sandbox: AwsSandbox, faults: FaultPlan, boot: dict[str, str]) -> None:
    kms = sandbox.client("kms", max_attempts=1)
    faults.add("kms_access_denied", match={"operation": "GenerateDataKey", "key_id": boot["kms_key_arn"]})
    kms.generate_data_key(KeyId=boot["kms_key_id"], KeySpec="AES_256")  # other key id: not matched
    with pytest.raises(ClientError) as exc:
        kms.generate_data_key(KeyId=boot["kms_key_arn"], KeySpec="AES_256")
    assert _code(exc) == "AccessDeniedException"
    assert "kms:GenerateDataKey" in exc.value.response["Error"]["Message"]
    assert kms.generate_data_key(KeyId=boot["kms_key_arn"], KeySpec="AES_256")["KeyId"] == boot["kms_key_arn"]
    fired = faults.fired("kms_access_denied")
    assert fired[-1]["attrs"] == {"operation": "GenerateDataKey", "key_id": boot["kms_key_arn"]}


def test_cluster_stuck_keeps_its_status(rs: Any, clock: FakeClock, faults: FaultPlan, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    faults.add("cluster_stuck", times=-1, match={"cluster_id": cid}, status="resizing")
    clock.advance(3600)
    assert status(rs, cid) == "resizing"
    assert status(rs, cid) == "resizing"
    assert rs.describe_resize(ClusterIdentifier=cid)["Status"] == "IN_PROGRESS"
    assert faults.fired("cluster_stuck")[-1]["attrs"] == {"cluster_id": cid}
    faults.clear()
    assert status(rs, cid) == "available"
    assert rs.describe_clusters(ClusterIdentifier=cid)["Clusters"][0]["Encrypted"] is True


def test_latency_delays_the_matching_service(sandbox: AwsSandbox, faults: FaultPlan, sleeps: Sleeps) -> None:
    faults.add("latency", match={"service": "sts", "operation": "GetCallerIdentity"}, seconds=0.3)
    sts = sandbox.client("sts", max_attempts=1)
    started = time.monotonic()
    assert sts.get_caller_identity()["Account"] == "123456789012"
    assert time.monotonic() - started >= 0.3
    assert sleeps.seconds[-1] == 0.3
    started = time.monotonic()
    sts.get_caller_identity()
    assert time.monotonic() - started < 0.3  # fired once only
    assert faults.fired("latency")[-1]["attrs"] == {"service": "sts", "operation": "GetCallerIdentity"}


def test_metrics_round_trip(sandbox: AwsSandbox) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for minutes_ago, iops in ((3, 120.0), (2, 80.0), (1, 0.0)):
        sandbox.publish_metrics("metrics-cluster", write_iops=iops, cpu=35.0, connections=4,
                                timestamp=now - timedelta(minutes=minutes_ago))
    cw = sandbox.client("cloudwatch")
    dims = [{"Name": "ClusterIdentifier", "Value": "metrics-cluster"}]

    def stat(metric: str, statistic: str) -> list[float]:
        points = cw.get_metric_statistics(Namespace="AWS/Redshift", MetricName=metric, Dimensions=dims,
                                          StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1),
                                          Period=60, Statistics=[statistic])["Datapoints"]
        return [p[statistic] for p in sorted(points, key=lambda p: p["Timestamp"])]

    assert stat("WriteIOPS", "Maximum") == [120.0, 80.0, 0.0]
    assert stat("CPUUtilization", "Average") == [35.0, 35.0, 35.0]
    assert stat("DatabaseConnections", "Maximum") == [4.0, 4.0, 4.0]
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/Redshift", Dimensions=dims)["Metrics"]}
    assert names == {"WriteIOPS", "CPUUtilization", "DatabaseConnections"}


def test_bootstrap_made_what_a_migration_needs(sandbox: AwsSandbox, boot: dict[str, str]) -> None:
    s3 = sandbox.client("s3")
    block = s3.get_public_access_block(Bucket=boot["bucket"])["PublicAccessBlockConfiguration"]
    assert all(block.values())
    kms = sandbox.client("kms")
    assert kms.describe_key(KeyId="alias/migrator-sandbox")["KeyMetadata"]["Arn"] == boot["kms_key_arn"]
    assert kms.describe_key(KeyId=boot["disabled_kms_key_id"])["KeyMetadata"]["KeyState"] == "Disabled"
    foreign = sandbox.client("kms", boot["other_region"]).describe_key(KeyId=boot["other_region_kms_key_id"])
    assert f":{boot['other_region']}:" in foreign["KeyMetadata"]["Arn"]
    role = sandbox.client("iam").get_role(RoleName="RedshiftUnloadCopy")["Role"]
    assert role["Arn"] == boot["iam_role_arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "redshift.amazonaws.com"}
    assert sandbox.bootstrap(boot["bucket"]) == boot  # a second call reuses what exists


def test_reply_lost_applies_the_change_and_answers_500(sandbox: AwsSandbox, faults: FaultPlan,
                                                        clock: FakeClock) -> None:
    """A change AWS made whose answer never arrived: botocore sends it again, and the second
    request meets the first one's effect."""
    cid = new_cluster(sandbox.client("redshift", max_attempts=1), clock)
    faults.add("reply_lost", match={"operation": "ModifyCluster", "cluster_id": cid})
    single = sandbox.client("redshift", max_attempts=1)
    with pytest.raises(ClientError) as lost:
        single.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=f"{cid}-moved")
    assert _code(lost) == "InternalFailure"
    assert lost.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert status(single, f"{cid}-moved") == "renaming"  # it took effect all the same
    twin = f"{cid}-twin"
    faults.add("reply_lost", match={"operation": "CreateCluster", "cluster_id": twin})
    retrying = sandbox.client("redshift", max_attempts=3)
    with pytest.raises(ClientError) as again:
        retrying.create_cluster(ClusterIdentifier=twin, NodeType="ra3.xlplus", MasterUsername="admin",
                                MasterUserPassword="Secret-Passw0rd", ClusterType="single-node")
    assert _code(again) == "ClusterAlreadyExists"  # the retry met the cluster the first request made
    assert status(single, twin) == "creating"
    assert [f["attrs"]["operation"] for f in faults.fired("reply_lost")[-2:]] == ["ModifyCluster", "CreateCluster"]


def test_serverless_has_no_workgroups_and_answers_at_once(sandbox: AwsSandbox) -> None:
    """The sandbox has no Redshift Serverless: GetWorkgroup answers ResourceNotFoundException (its
    botocore error shape) instead of leaving the request unanswered, and any other Serverless call
    is refused as not modelled."""
    from botocore.config import Config

    quick = sandbox._session.client("redshift-serverless", endpoint_url=sandbox.endpoint_url,
                                    region_name=sandbox.region,
                                    config=Config(read_timeout=5, retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as missing:
        quick.get_workgroup(workgroupName="analytics")
    assert _code(missing) == "ResourceNotFoundException"
    assert "analytics" in str(missing.value)
    with pytest.raises(ClientError) as other:
        quick.list_workgroups()
    assert _code(other) == "ValidationException"
    assert "not model" in str(other.value)
    assert sandbox.client("redshift").describe_clusters()["Clusters"] is not None  # the connection stays in step
