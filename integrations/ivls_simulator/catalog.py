"""What ordered codes come back as, from the catalogue the practice's item list is built from."""

from __future__ import annotations

from billing.catalog import CATALOG_PATH, TEXT_INSTRUMENTS, CatalogItem, load_catalog

__all__ = [
    "CATALOG_PATH",
    "TEXT_INSTRUMENTS",
    "CatalogItem",
    "analytes_by_instrument",
    "load_catalog",
]


def analytes_by_instrument(
    codes: list[str] | tuple[str, ...], catalog: dict[str, CatalogItem] | None = None
) -> tuple[dict[str, list[CatalogItem]], list[str]]:
    """What the ordered codes come back as, grouped by instrument, in order.

    Returns ``({instrument: [analyte, ...]}, unknown_codes)``. An analyte asked
    for twice (CHEM10 and CHEM17 together) is reported once.
    """
    catalog = load_catalog() if catalog is None else catalog
    groups: dict[str, list[CatalogItem]] = {}
    seen: set[str] = set()
    unknown: list[str] = []
    for code in codes:
        item = catalog.get(code)
        if item is None:
            unknown.append(code)
            continue
        if item.yields:
            analytes = [
                catalog.get(y) or CatalogItem(y, "analyte", y, item.instrument) for y in item.yields
            ]
        else:
            analytes = [item]
        for analyte in analytes:
            if analyte.code in seen:
                continue
            seen.add(analyte.code)
            instrument = analyte.instrument or item.instrument
            groups.setdefault(instrument, []).append(analyte)
    return groups, unknown
