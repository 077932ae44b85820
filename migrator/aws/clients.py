"""boto3 clients configured the same way everywhere: region, optional endpoint
(the sandbox), and botocore's adaptive retries for throttling."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)


class AwsClients:
    def __init__(self, region: str, endpoint_url: str | None = None, session: boto3.Session | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.session = session or boto3.Session()
        self._cache: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._cache:
            self._cache[key] = self.session.client(service, region_name=key[1], endpoint_url=self.endpoint_url,
                                                   config=RETRIES)
        return self._cache[key]
