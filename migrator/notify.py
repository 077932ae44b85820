"""Tell people when a migration needs them: the old source took stray writes after the cutover, a
gate waits, a run failed, it completed.

A notification never blocks or fails the migration: every send is bounded by a short
timeout, every failure is caught and returned as an outcome the caller records in the
history. Messages carry names, phases and exit codes only, never a secret.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

log = logging.getLogger("migrator.notify")

Event = Literal["stray_writes", "gate_waiting", "run_failed", "migration_ended"]
#: ``stray_writes``: a check found writes to the old source after the cutover that no earlier check had.
EVENTS: tuple[Event, ...] = ("stray_writes", "gate_waiting", "run_failed", "migration_ended")
#: Each try of a delivery waits at most this long (MIGRATOR_NOTIFY_TIMEOUT_SECONDS overrides).
NOTIFY_TIMEOUT_SECONDS = 5.0
TIMEOUT_ENV = "MIGRATOR_NOTIFY_TIMEOUT_SECONDS"
#: SNS is tried this many times in all (the run's own AWS calls get far more patience).
SNS_ATTEMPTS = 2


def timeout_seconds() -> float:
    """The per-try limit; a value that is not a positive finite number of seconds is ignored
    (with a warning): a notification setting must never fail the run."""
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return NOTIFY_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        log.warning("%s=%r is not a positive number of seconds; using %.0f s", TIMEOUT_ENV, raw,
                    NOTIFY_TIMEOUT_SECONDS)
        return NOTIFY_TIMEOUT_SECONDS
    return value


_SUBJECT_LIMIT = 100  # SNS refuses longer subjects


@dataclass(frozen=True)
class Notification:
    event: Event
    migration: str
    phase: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"migrator {self.migration}: {self.summary}"[:_SUBJECT_LIMIT]

    def body(self) -> dict[str, Any]:
        return {"source": "migrator", **asdict(self)}


@dataclass(frozen=True)
class Delivery:
    channel: Literal["sns", "webhook"]
    target: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Channels:
    sns_topic_arn: str | None = None
    webhook_url: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.sns_topic_arn or self.webhook_url)


def _redacted_url(url: str) -> str:
    """Webhook URLs often carry a token in their path or query: record only where they point."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}{f':{parsed.port}' if parsed.port else ''}/…"


def _send_sns(sns_client: Any, topic_arn: str, note: Notification) -> Delivery:
    try:
        sns_client.publish(TopicArn=topic_arn, Subject=note.subject,
                           Message=json.dumps(note.body(), default=str, sort_keys=True))
        return Delivery("sns", topic_arn, True)
    except Exception as exc:  # a notification must never fail the migration
        return Delivery("sns", topic_arn, False, f"{type(exc).__name__}: {exc}"[:300])


def _send_webhook(url: str, note: Notification, timeout: float) -> Delivery:
    shown = _redacted_url(url)
    data = json.dumps({"text": note.subject, **note.body()}, default=str, sort_keys=True).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "migrator"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (the operator's URL)
            answer.read(1024)
        return Delivery("webhook", shown, True)
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", shown, False, f"HTTP {exc.code}")
    except Exception as exc:  # a notification must never fail the migration
        return Delivery("webhook", shown, False, type(exc).__name__)


def send(channels: Channels, note: Notification, *, sns_client: Callable[[], Any] | None = None,
         timeout: float | None = None) -> list[Delivery]:
    """Send ``note`` on every configured channel; never raises. ``sns_client`` should wait no
    longer than ``timeout`` per try (AwsClients.brief_client)."""
    timeout = timeout_seconds() if timeout is None else timeout
    deliveries: list[Delivery] = []
    if channels.sns_topic_arn:
        try:
            client = sns_client() if sns_client else None
        except Exception as exc:
            deliveries.append(Delivery("sns", channels.sns_topic_arn, False, type(exc).__name__))
        else:
            if client is not None:
                deliveries.append(_send_sns(client, channels.sns_topic_arn, note))
    if channels.webhook_url:
        deliveries.append(_send_webhook(channels.webhook_url, note, timeout))
    for delivery in deliveries:
        if not delivery.ok:
            log.warning("notification %s to %s failed: %s", note.event, delivery.target, delivery.error)
    return deliveries

