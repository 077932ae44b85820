"""boto3 clients configured the same way everywhere: region, optional endpoint (the sandbox),
and botocore's adaptive retries for throttling.

Thread safety: boto3 Session objects are not thread-safe, clients are. Every client is created
under one lock and cached, so worker threads only ever share finished clients. AWS credentials
are resolved once per process (one shared Session per credential environment), not once per
AwsClients or database connection: an assume-role profile with MFA prompts once per run.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)

_LOCK = threading.RLock()
_SHARED_SESSIONS: dict[tuple[str, ...], boto3.Session] = {}
_CLIENTS: "weakref.WeakKeyDictionary[boto3.Session, dict[tuple[Any, ...], Any]]" = (
    weakref.WeakKeyDictionary())
_ENV_KEYS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def _environment_key() -> tuple[str, ...]:
    """What decides which credentials a default Session finds (secrets hashed, never kept)."""
    return tuple(hashlib.sha256(os.environ.get(k, "").encode()).hexdigest() for k in _ENV_KEYS)


def shared_session() -> boto3.Session:
    """The process's Session for the current credential environment (created once, under the lock)."""
    key = _environment_key()
    with _LOCK:
        session = _SHARED_SESSIONS.get(key)
        if session is None:
            try:
                session = boto3.Session()
            except BotoCoreError as exc:  # ProfileNotFound and friends: the operator's to fix
                from migrator.aws.errors import aws_error

                raise aws_error(exc, "AWS session") from None
            _SHARED_SESSIONS[key] = session
        return session


class AwsClients:
    def __init__(self, region: str, endpoint_url: str | None = None, session: boto3.Session | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.session = session or shared_session()

    def client(self, service: str, region: str | None = None) -> Any:
        """A client for ``service``; the same object for every caller and thread (clients are thread-safe)."""
        return self._cached(service, region, RETRIES)

    def brief_client(self, service: str, *, timeout: float, attempts: int, region: str | None = None) -> Any:
        """A client for calls that must not hold a run: each try waits at most ``timeout`` seconds
        and ``attempts`` tries in all (an informative lookup, a notification), not the patient
        retries of the migration's own calls."""
        config = Config(connect_timeout=timeout, read_timeout=timeout,
                        retries={"total_max_attempts": attempts, "mode": "standard"})
        return self._cached(service, region, config, variant=(timeout, attempts))

    def _cached(self, service: str, region: str | None, config: Config, *, variant: tuple[Any, ...] = ()) -> Any:
        """The one place a client is built: under the lock, once per session, service, region,
        endpoint and ``variant`` (what sets ``config`` apart from the default)."""
        key = (service, region or self.region, self.endpoint_url, *variant)
        with _LOCK:
            cache = _CLIENTS.setdefault(self.session, {})
            found = cache.get(key)
            if found is None:
                try:
                    found = self.session.client(service, region_name=key[1], endpoint_url=self.endpoint_url,
                                                config=config)
                except BotoCoreError as exc:
                    from migrator.aws.errors import aws_error

                    raise aws_error(exc, f"AWS {service} client") from None
                cache[key] = found
            return found

    def prepare(self, *services: str) -> "AwsClients":
        """Create the named clients now, before worker threads start (they then only read the cache)."""
        for service in services:
            self.client(service)
        return self
