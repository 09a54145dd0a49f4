"""The HubSpot connector (hubspot-api-client 12.x): see connector.py and docs/hubspot.md."""

from kpisync.connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
