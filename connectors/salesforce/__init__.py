"""The Salesforce connector: auth, client (HTTP, retries, limits), objects, mapping, write-back, provisioning."""

from kpisync.connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]
