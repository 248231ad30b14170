"""Point the official Azure SDK at `vmss-sim serve` (or, unchanged, at Azure).

    from emulator_client import compute_client
    client = compute_client("http://127.0.0.1:8765", subscription_id)

On a loopback endpoint it uses a fixed test token and lets the SDK's bearer-token policy send
it over plain HTTP (the emulator does not check tokens); on any other endpoint it uses
azure-identity's DefaultAzureCredential over HTTPS, as production code does.
"""
from __future__ import annotations

import ipaddress
import time
from typing import Any
from urllib.parse import urlparse

from azure.core.credentials import AccessToken
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.mgmt.compute import ComputeManagementClient

SCOPE = "https://management.azure.com/.default"


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class StaticTokenCredential:
    """A TokenCredential that always returns the same token: for the emulator only."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("emulator-test-token", int(time.time()) + 3600)


class LoopbackBearerTokenPolicy(BearerTokenCredentialPolicy):
    """The SDK refuses to send a bearer token over plain HTTP; allow it on loopback only."""

    def on_request(self, request: PipelineRequest) -> None:
        if is_loopback(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


def compute_client(endpoint: str, subscription_id: str, **kwargs: Any) -> ComputeManagementClient:
    """A ComputeManagementClient for `endpoint`; extra keywords (e.g. `polling_interval`, in
    seconds between polls of a long-running operation) go to the client."""
    if is_loopback(endpoint):
        credential: Any = StaticTokenCredential()
        kwargs.setdefault("authentication_policy", LoopbackBearerTokenPolicy(credential, SCOPE))
    else:  # pragma: no cover - needs a real subscription
        from azure.identity import DefaultAzureCredential
        credential = DefaultAzureCredential()
    return ComputeManagementClient(credential, subscription_id, base_url=endpoint, **kwargs)
