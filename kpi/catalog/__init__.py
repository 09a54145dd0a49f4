"""The catalog's declarations, one module per section of spec/kpi-catalog.md.

Importing this package registers every KPI (A deals, B activity, C funnel,
D customers, E support).
"""

from kpisync.kpi.catalog import activity, customers, deals, funnel, support  # noqa: F401

_NO_DATA = (
    "a CRM does not hold this data; not computed until an input file for it is designed "
    "(kpi-catalog.md, out of the CRM's reach)"
)

# 004's balanced-scorecard measures the product knowingly does not compute.
OUT_OF_REACH: list[dict[str, str]] = [
    {"id": kpi_id, "name": name, "reason": _NO_DATA}
    for kpi_id, name in (
        ("profit", "Profit"),
        ("cost", "Cost"),
        ("cogs", "Cost of goods sold"),
        ("expenses_vs_budget", "Expenses against budget"),
        ("dso", "Days sales outstanding"),
        ("defect_rate", "Product defect rate"),
        ("lob_efficiency", "Line-of-business efficiency"),
    )
]
