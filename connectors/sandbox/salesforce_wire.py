"""What every Salesforce sandbox endpoint shares: the org's identity and the error body shape (salesforce-api.md §0)."""

from __future__ import annotations

from typing import Any

from kpisync.connectors.sandbox.server import Response

ORG_ID = "00D8d000001KpQrEAK"
INTEGRATION_USER = "0058d000004AbCgAAK"  # the user every login becomes


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    """Salesforce's error body: a JSON list of {message, errorCode[, fields]}."""
    return Response(status, [{"message": message, "errorCode": code, **extra}])
