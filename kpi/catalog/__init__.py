"""The catalog's declarations, one module per section of spec/kpi-catalog.md."""
