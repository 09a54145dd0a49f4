"""kpisync: CRM KPI sync."""

__version__ = "0.1.0"
