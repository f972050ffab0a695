"""Line arithmetic: Decimal, rounded per line to cents, half up."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.money import Amounts, add_months, cents, line_amounts, split_evenly, total

D = Decimal


def amounts(quantity, price, rate, *, gross_prices):
    return line_amounts(
        quantity=D(quantity), unit_price=D(price), vat_rate=D(rate), prices_include_vat=gross_prices
    )


def test_three_times_19_99_at_25_5_percent_on_net_prices():
    assert amounts("3", "19.99", "25.50", gross_prices=False) == Amounts(
        net=D("59.97"), vat=D("15.29"), gross=D("75.26")
    )


def test_three_times_19_99_at_25_5_percent_on_gross_prices():
    # 59.97 / 1.255 = 47.7848...; the VAT taken out is 12.1851... -> 12.19.
    assert amounts("3", "19.99", "25.50", gross_prices=True) == Amounts(
        net=D("47.78"), vat=D("12.19"), gross=D("59.97")
    )


@pytest.mark.parametrize("gross_prices", [True, False])
def test_one_cent_carries_no_vat_but_keeps_its_cent(gross_prices):
    result = amounts("1", "0.01", "25.50", gross_prices=gross_prices)
    assert result == Amounts(net=D("0.01"), vat=D("0.00"), gross=D("0.01"))


def test_half_a_cent_of_vat_rounds_up_not_to_even():
    # 0.02 x 25 % = 0.005: half up gives 0.01 where banker's rounding would give 0.00.
    assert amounts("1", "0.02", "25", gross_prices=False).vat == D("0.01")
    assert amounts("1", "0.06", "25", gross_prices=False).vat == D("0.02")  # 0.015 -> 0.02


def test_quantity_times_price_is_rounded_before_vat():
    # 0.333 x 10.00 = 3.33; 2.5 x 0.99 = 2.475 -> 2.48.
    assert amounts("0.333", "10.00", "0", gross_prices=False).gross == D("3.33")
    assert amounts("2.5", "0.99", "10", gross_prices=True).gross == D("2.48")


@pytest.mark.parametrize("gross_prices", [True, False])
@pytest.mark.parametrize(
    "quantity,price,rate",
    [("3", "19.99", "25.50"), ("1", "0.01", "14"), ("7", "13.37", "10"), ("1.5", "99.99", "24")],
)
def test_net_plus_vat_is_gross_to_the_cent(quantity, price, rate, gross_prices):
    result = amounts(quantity, price, rate, gross_prices=gross_prices)
    assert result.net + result.vat == result.gross
    assert all(value == value.quantize(D("0.01")) for value in (result.net, result.vat))


def test_invoice_total_is_the_sum_of_rounded_lines():
    # Three lines of 0.02 at 25 %: 0.01 VAT each -> 0.03, not round(0.015) = 0.02.
    lines = [amounts("1", "0.02", "25", gross_prices=False) for _ in range(3)]
    assert total(lines) == Amounts(net=D("0.06"), vat=D("0.03"), gross=D("0.09"))


def test_cents_rounds_negative_halves_away_from_zero():
    assert cents(D("-0.005")) == D("-0.01")
    assert cents(D("2.675")) == D("2.68")


def test_split_evenly_adds_up_and_puts_odd_cents_first():
    assert split_evenly(D("100.00"), 3) == [D("33.34"), D("33.33"), D("33.33")]
    assert split_evenly(D("0.01"), 2) == [D("0.01"), D("0.00")]
    assert sum(split_evenly(D("75.26"), 7)) == D("75.26")


def test_add_months_keeps_the_day_or_the_month_end():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2026, 11, 15), 3) == dt.date(2027, 2, 15)
