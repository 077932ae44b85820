"""Hourly CloudWatch figures of a cluster over the last weeks (AWS/Redshift CPUUtilization average,
DatabaseConnections average, WriteIOPS maximum), read with GetMetricData (one request, three
queries, paginated by NextToken). CloudWatch keeps hourly data for 455 days; hours without a data
point are absent from the answer, and the caller decides whether what came back is enough."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from migrator.aws.clients import AwsClients
from migrator.aws.clusters import call

#: (query id, metric name, statistic): what a quiet hour is judged by.
METRICS = (("cpu", "CPUUtilization", "Average"), ("connections", "DatabaseConnections", "Average"),
           ("write_iops", "WriteIOPS", "Maximum"))


def hourly_metrics(clients: AwsClients, cluster_id: str, days: int, now: datetime | None = None
                   ) -> dict[str, dict[datetime, float]]:
    """Per metric id ("cpu", "connections", "write_iops"): the value of each whole UTC hour of
    the last ``days`` that has data."""
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    dims = [{"Name": "ClusterIdentifier", "Value": cluster_id}]
    queries = [{"Id": qid, "ReturnData": True,
                "MetricStat": {"Metric": {"Namespace": "AWS/Redshift", "MetricName": name, "Dimensions": dims},
                               "Period": 3600, "Stat": stat}} for qid, name, stat in METRICS]
    found: dict[str, dict[datetime, float]] = {qid: {} for qid, _, _ in METRICS}
    token: str | None = None
    cloudwatch = clients.client("cloudwatch")
    while True:
        extra: dict[str, Any] = {"NextToken": token} if token else {}
        answer = call(f"GetMetricData {cluster_id}", lambda: cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending", **extra))
        for result in answer.get("MetricDataResults", []):
            series = found.setdefault(str(result["Id"]), {})
            for stamp, value in zip(result.get("Timestamps", []), result.get("Values", [])):
                hour = stamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                series[hour] = float(value)
        token = answer.get("NextToken")
        if not token:
            return found


__all__ = ["METRICS", "hourly_metrics"]
