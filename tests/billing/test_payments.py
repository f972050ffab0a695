"""Payments and refunds: append-only, part payments, balances and the derived status."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import Payment, Refund
from billing.selectors import (
    balance_of,
    invoice_balance,
    invoices_with_balances,
    payment_plan_schedule,
    payment_plans_overdue,
)
from billing.services import (
    instalments_even,
    invoice_create_for_consultation,
    invoice_finalise,
    payment_plan_cancel,
    payment_plan_create,
    payment_record,
    refund_record,
)
from tests.billing.invoicing import practice

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def clinic():
    return practice()


@pytest.fixture
def invoice(clinic):
    """A final invoice of 75.26: 3 x 19.99 and 15.29, prices including 25.5 % VAT."""
    clinic.charge("Vaccine", "19.99", "3")
    clinic.charge("Needle", "15.29")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    return invoice_finalise(invoice=draft, finalised_by=clinic.vet)


def pay(invoice, amount, user, method="card"):
    return payment_record(invoice=invoice, amount=amount, method=method, recorded_by=user)


def test_part_payments_reduce_the_balance_until_paid(invoice, clinic):
    assert invoice.total_gross == D("75.26")
    balance = invoice_balance(invoice)
    assert (balance.balance, balance.status) == (D("75.26"), "unpaid")

    pay(invoice, "0.01", clinic.vet, method="cash")
    balance = invoice_balance(invoice)
    assert (balance.balance, balance.status) == (D("75.25"), "partially_paid")

    pay(invoice, "50.00", clinic.vet)
    pay(invoice, "25.25", clinic.vet, method="bank_transfer")
    balance = invoice_balance(invoice)
    assert (balance.paid, balance.balance, balance.status) == (D("75.26"), D("0.00"), "paid")


def test_paying_more_than_due_shows_what_is_owed_back(invoice, clinic):
    pay(invoice, "80.00", clinic.vet, method="cash")
    balance = invoice_balance(invoice)
    assert (balance.balance, balance.status) == (D("-4.74"), "overpaid")


def test_a_partial_refund_counts_against_what_was_paid(invoice, clinic):
    payment = pay(invoice, "75.26", clinic.vet)
    refund_record(
        payment=payment, amount="20.00", reason="Vaccine not given", recorded_by=clinic.vet
    )
    balance = invoice_balance(invoice)
    assert (balance.received, balance.refunded, balance.paid) == (
        D("75.26"),
        D("20.00"),
        D("55.26"),
    )
    assert (balance.balance, balance.status) == (D("20.00"), "partially_paid")


def test_refunding_everything_leaves_the_invoice_refunded(invoice, clinic):
    first = pay(invoice, "50.00", clinic.vet)
    second = pay(invoice, "25.26", clinic.vet)
    refund_record(payment=first, amount="50.00", reason="Complaint", recorded_by=clinic.vet)
    refund_record(payment=second, amount="25.26", reason="Complaint", recorded_by=clinic.vet)
    assert invoice_balance(invoice).status == "refunded"


def test_a_refund_above_the_payment_is_refused_with_a_clear_message(invoice, clinic):
    payment = pay(invoice, "50.00", clinic.vet)
    refund_record(payment=payment, amount="20.00", reason="Partly", recorded_by=clinic.vet)
    with pytest.raises(ValidationError) as refused:
        refund_record(payment=payment, amount="30.01", reason="Rest", recorded_by=clinic.vet)
    assert refused.value.messages == [
        "A refund of 30.01 is more than this payment has left to refund: 50.00 was paid, "
        "20.00 already refunded, at most 30.00 can be refunded."
    ]
    assert Refund.objects.count() == 1
    refund_record(payment=payment, amount="30.00", reason="Rest", recorded_by=clinic.vet)
    with pytest.raises(ValidationError, match="at most 0.00 can be refunded"):
        refund_record(payment=payment, amount="0.01", reason="More", recorded_by=clinic.vet)


def test_a_refund_is_limited_by_its_own_payment_not_the_invoice(invoice, clinic):
    small = pay(invoice, "10.00", clinic.vet)
    pay(invoice, "65.26", clinic.vet)
    with pytest.raises(ValidationError, match="at most 10.00 can be refunded"):
        refund_record(payment=small, amount="11.00", reason="x", recorded_by=clinic.vet)


@pytest.mark.parametrize(
    "amount,message",
    [("0", "more than zero"), ("-5", "more than zero"), ("1.001", "whole cents"), ("x", "number")],
)
def test_bad_payment_amounts_are_refused(invoice, clinic, amount, message):
    with pytest.raises(ValidationError, match=message):
        pay(invoice, amount, clinic.vet)
    assert not Payment.objects.exists()


def test_a_draft_takes_no_payment(clinic):
    clinic.charge("Consultation", "45.00")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    with pytest.raises(ValidationError, match="Finalise the invoice"):
        pay(draft, "45.00", clinic.vet)


def test_a_refund_needs_a_reason(invoice, clinic):
    payment = pay(invoice, "10.00", clinic.vet)
    with pytest.raises(ValidationError, match="reason"):
        refund_record(payment=payment, amount="1.00", reason="  ", recorded_by=clinic.vet)


def test_payments_and_refunds_are_append_only(invoice, clinic):
    payment = pay(invoice, "10.00", clinic.vet)
    refund = refund_record(payment=payment, amount="1.00", reason="x", recorded_by=clinic.vet)
    payment.amount = D("1000.00")
    with pytest.raises(ValueError, match="append-only"):
        payment.save()
    refund.amount = D("0.50")
    with pytest.raises(ValueError, match="append-only"):
        refund.save()
    payment.refresh_from_db()
    assert payment.amount == D("10.00")


def test_the_database_refuses_non_positive_amounts(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(invoice=invoice, method="cash", amount=D("-1.00"))


def test_list_balances_agree_with_the_single_invoice_balance(invoice, clinic):
    payment = pay(invoice, "50.00", clinic.vet)
    refund_record(payment=payment, amount="5.00", reason="x", recorded_by=clinic.vet)
    row = invoices_with_balances(type(invoice).objects.filter(pk=invoice.pk)).get()
    assert balance_of(row) == invoice_balance(invoice)


# --- Payment plans ------------------------------------------------------------------------


def test_a_plan_splits_the_balance_into_instalments_that_add_up(invoice, clinic):
    pay(invoice, "0.26", clinic.vet)
    rows = instalments_even(amount=D("75.00"), count=4, first_due=dt.date(2026, 1, 31))
    plan = payment_plan_create(invoice=invoice, instalments=rows, created_by=clinic.vet)
    assert [(i.due_date, i.amount) for i in plan.instalments.all()] == [
        (dt.date(2026, 1, 31), D("18.75")),
        (dt.date(2026, 2, 28), D("18.75")),
        (dt.date(2026, 3, 31), D("18.75")),
        (dt.date(2026, 4, 30), D("18.75")),
    ]
    assert plan.paid_before == D("0.26")


def test_instalments_must_add_up_to_the_balance(invoice, clinic):
    with pytest.raises(ValidationError, match="add up to 75.00, but 75.26 is left to pay"):
        payment_plan_create(
            invoice=invoice,
            instalments=[(dt.date(2026, 1, 1), D("75.00"))],
            created_by=clinic.vet,
        )


def test_one_active_plan_per_invoice(invoice, clinic):
    rows = instalments_even(amount=D("75.26"), count=2, first_due=dt.date(2026, 1, 1))
    plan = payment_plan_create(invoice=invoice, instalments=rows, created_by=clinic.vet)
    with pytest.raises(ValidationError, match="already has a payment plan"):
        payment_plan_create(invoice=invoice, instalments=rows, created_by=clinic.vet)
    payment_plan_cancel(plan=plan, cancelled_by=clinic.vet)
    payment_plan_create(invoice=invoice, instalments=rows, created_by=clinic.vet)


def test_payments_settle_the_oldest_instalment_first_and_the_rest_fall_overdue(invoice, clinic):
    rows = instalments_even(amount=D("75.26"), count=3, first_due=dt.date(2026, 1, 15))
    assert [amount for _, amount in rows] == [D("25.09"), D("25.09"), D("25.08")]
    plan = payment_plan_create(invoice=invoice, instalments=rows, created_by=clinic.vet)
    pay(invoice, "30.00", clinic.vet)

    schedule = payment_plan_schedule(plan, today=dt.date(2026, 2, 20))
    assert [(row.paid, row.state) for row in schedule] == [
        (D("25.09"), "paid"),
        (D("4.91"), "overdue"),
        (D("0.00"), "due"),
    ]
    overdue = payment_plans_overdue(clinic.department, today=dt.date(2026, 2, 20))
    assert [(row["invoice"], row["overdue"]) for row in overdue] == [(invoice, D("20.18"))]

    pay(invoice, "20.18", clinic.vet)
    assert payment_plans_overdue(clinic.department, today=dt.date(2026, 2, 20)) == []
    schedule = payment_plan_schedule(plan, today=dt.date(2026, 3, 20))
    assert [row.state for row in schedule] == ["paid", "paid", "overdue"]


def test_too_many_instalments_for_the_amount_are_refused():
    with pytest.raises(ValidationError, match="cannot be split into 3 instalments"):
        instalments_even(amount=D("0.02"), count=3, first_due=dt.date(2026, 1, 1))
