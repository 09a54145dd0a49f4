"""CRM connectors: one package per CRM behind the interface in `base.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kpisync.config import Config
    from kpisync.connectors.base import Connector


def build(config: Config) -> Connector:
    """The connector for a validated config (imports only the CRM it needs)."""
    if config.crm == "salesforce":
        from kpisync.connectors.salesforce import SalesforceConnector

        return SalesforceConnector(config)
    from kpisync.connectors.hubspot import HubSpotConnector

    return HubSpotConnector(config)
