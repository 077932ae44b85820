"""Notifications reach SNS (moto) and a webhook (a local HTTP server), and never fail the caller."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from migrator.notify import Channels, Notification, send

NOTE = Notification("gate_waiting", "analytics-to-kms", "awaiting_cutover", "cutover waits for approval",
                    {"run": "migrator run --approve-cutover"})


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        type(self).received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T0SECRETTOKEN", handler
    server.shutdown()
    server.server_close()


def test_webhook_gets_the_event_and_the_record_hides_the_token(webhook: tuple[str, type[_Hook]]) -> None:
    url, handler = webhook
    [delivery] = send(Channels(webhook_url=url), NOTE)
    assert delivery.ok and delivery.channel == "webhook"
    assert "T0SECRETTOKEN" not in delivery.target
    [request] = handler.received
    assert request["path"] == "/hooks/T0SECRETTOKEN"
    assert request["body"]["event"] == "gate_waiting"
    assert request["body"]["migration"] == "analytics-to-kms"
    assert "approval" in request["body"]["text"]


def test_webhook_errors_are_returned_not_raised(webhook: tuple[str, type[_Hook]]) -> None:
    url, handler = webhook
    handler.status = 500
    [delivery] = send(Channels(webhook_url=url), NOTE)
    assert not delivery.ok and delivery.error == "HTTP 500"
    [refused] = send(Channels(webhook_url="http://127.0.0.1:9/nothing-listens"), NOTE, timeout=1.0)
    assert not refused.ok and refused.error


@mock_aws
def test_sns_publishes_to_the_topic() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="migrations")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    [delivery] = send(Channels(sns_topic_arn=topic), NOTE, sns_client=lambda: sns)
    assert delivery.ok
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"].startswith("migrator analytics-to-kms")
    assert json.loads(envelope["Message"])["phase"] == "awaiting_cutover"


@mock_aws
def test_sns_to_a_missing_topic_is_a_failed_delivery() -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    missing = "arn:aws:sns:us-east-1:123456789012:nope"
    [delivery] = send(Channels(sns_topic_arn=missing), NOTE, sns_client=lambda: sns)
    assert not delivery.ok and "NotFound" in (delivery.error or "")


@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf"])
def test_a_bad_timeout_setting_falls_back_and_never_fails_the_send(webhook: tuple[str, type[_Hook]],
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    value: str) -> None:
    from migrator import notify

    monkeypatch.setenv(notify.TIMEOUT_ENV, value)
    assert notify.timeout_seconds() == notify.NOTIFY_TIMEOUT_SECONDS
    url, _ = webhook
    [delivery] = send(Channels(webhook_url=url), NOTE)
    assert delivery.ok
