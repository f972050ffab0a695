from decimal import Decimal

from django import template
from django.conf import settings

register = template.Library()


@register.filter
def money(value) -> str:
    """12345.5 -> '12,345.50'; blank for None."""
    if value is None or value == "":
        return ""
    return f"{Decimal(value):,.2f}"


@register.filter
def quantity(value) -> str:
    """A quantity without needless decimals: 1.000 -> '1', 2.500 -> '2.5'."""
    if value is None or value == "":
        return ""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


@register.filter
def percent(value) -> str:
    """A VAT rate without needless decimals: 25.50 -> '25.5 %'."""
    return f"{quantity(value)} %"


@register.simple_tag
def currency() -> str:
    return getattr(settings, "BILLING_CURRENCY", "EUR")


@register.filter
def absolute(value):
    return abs(value) if value not in (None, "") else value
