"""The IDEXX code catalogue, read from billing/data/idexx_catalog.csv (plain Python: the
simulator imports it too, and it must not need Django).

Each ordering code (``kind=order``) either yields analytes (a Chem 17 yields
ALB, ALKP, ...) or, with no ``yields``, comes back as a result under its own
code (SDMA, TT4). Ranges are kept as the text written in the catalogue so a
value's number of decimal places can follow the range's.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "idexx_catalog.csv"

# Instruments whose results are words (Positive/Negative), not numbers.
TEXT_INSTRUMENTS = frozenset({"SNAP"})


@dataclass(frozen=True)
class CatalogItem:
    code: str
    kind: str
    name: str
    instrument: str
    yields: tuple[str, ...] = ()
    unit: str = ""
    dog_low: str = ""
    dog_high: str = ""
    cat_low: str = ""
    cat_high: str = ""
    critical_low: str = ""
    critical_high: str = ""
    price: str = ""

    def reference_range(self, species: str) -> tuple[str, str]:
        """(low, high) as text: cat ranges for FELINE, dog ranges for anything else."""
        if species.upper() == "FELINE":
            return self.cat_low, self.cat_high
        return self.dog_low, self.dog_high

    @property
    def is_text(self) -> bool:
        return self.instrument in TEXT_INSTRUMENTS


def _rows(path: Path):
    with path.open(encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if line.strip() and not line.lstrip().startswith("#")]
    yield from csv.DictReader(lines)


@functools.cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogItem]:
    """Every catalogue row by code (codes are case-sensitive: ``Ca`` is not ``CA``)."""
    items: dict[str, CatalogItem] = {}
    for row in _rows(Path(path)):
        code = (row.get("code") or "").strip()
        if not code:
            continue
        items[code] = CatalogItem(
            code=code,
            kind=(row.get("kind") or "").strip(),
            name=(row.get("name") or "").strip(),
            instrument=(row.get("instrument") or "").strip(),
            yields=tuple((row.get("yields") or "").split()),
            unit=(row.get("unit") or "").strip(),
            dog_low=(row.get("dog_low") or "").strip(),
            dog_high=(row.get("dog_high") or "").strip(),
            cat_low=(row.get("cat_low") or "").strip(),
            cat_high=(row.get("cat_high") or "").strip(),
            critical_low=(row.get("critical_low") or "").strip(),
            critical_high=(row.get("critical_high") or "").strip(),
            price=(row.get("price") or "").strip(),
        )
    return items
