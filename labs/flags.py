"""Flags and numbers derived from a result value."""

import re
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def number_from_text(text: str) -> Decimal | None:
    """The number a value states, or None when the value is text ('Positive', '1+ Few')."""
    text = (text or "").strip()
    if not _NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def result_flag(
    value: Decimal | None,
    *,
    low: Decimal | None = None,
    high: Decimal | None = None,
    critical_low: Decimal | None = None,
    critical_high: Decimal | None = None,
) -> str:
    """LL/L/HH/H/N for a number against its range; bounds are inclusive, missing ones skipped.

    The value is compared as written, whatever its qualifier (a '<5' is compared as 5).
    A text value, or a range with no bounds at all, has no flag.
    """
    if value is None:
        return ""
    if critical_low is not None and value < critical_low:
        return "LL"
    if low is not None and value < low:
        return "L"
    if critical_high is not None and value > critical_high:
        return "HH"
    if high is not None and value > high:
        return "H"
    if any(bound is not None for bound in (low, high, critical_low, critical_high)):
        return "N"
    return ""
