"""Money arithmetic for invoices: Decimal only, rounded per line to cents, half up.

Kept free of the database so the rules can be read (and tested) on their own.
"""

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")


def cents(value) -> Decimal:
    """A value rounded to whole cents, half up (0.005 -> 0.01, -0.005 -> -0.01)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def is_whole_cents(value: Decimal) -> bool:
    return value == value.quantize(CENT)


@dataclass(frozen=True)
class Amounts:
    net: Decimal = ZERO
    vat: Decimal = ZERO
    gross: Decimal = ZERO

    def __add__(self, other: "Amounts") -> "Amounts":
        return Amounts(self.net + other.net, self.vat + other.vat, self.gross + other.gross)

    def __neg__(self) -> "Amounts":
        return Amounts(-self.net, -self.vat, -self.gross)


def line_amounts(
    *, quantity: Decimal, unit_price: Decimal, vat_rate: Decimal, prices_include_vat: bool
) -> Amounts:
    """Net, VAT and gross of one line, each in whole cents.

    The line amount (quantity x unit price) is rounded first. With gross prices the VAT is
    taken out of it (vat = gross - gross / (1 + r)); with net prices it is added on
    (vat = net x r). The third figure is the difference, so net + vat == gross exactly.
    """
    rate = Decimal(vat_rate) / HUNDRED
    amount = cents(Decimal(quantity) * Decimal(unit_price))
    if prices_include_vat:
        vat = cents(amount - amount / (1 + rate))
        return Amounts(net=amount - vat, vat=vat, gross=amount)
    vat = cents(amount * rate)
    return Amounts(net=amount, vat=vat, gross=amount + vat)


def total(amounts: Iterable[Amounts]) -> Amounts:
    result = Amounts()
    for amount in amounts:
        result = result + amount
    return result


def split_evenly(amount: Decimal, count: int) -> list[Decimal]:
    """``amount`` in ``count`` parts of whole cents that add up exactly; the odd cents go
    on the first parts (100.00 / 3 -> 33.34, 33.33, 33.33)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    total_cents = int(cents(amount) / CENT)
    base, extra = divmod(total_cents, count)
    return [(Decimal(base + (1 if i < extra else 0)) * CENT) for i in range(count)]


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 -> 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
