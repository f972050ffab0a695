"""Invoices: drafts from a visit's charges, finalising with a number, credit notes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import ConsultationLine, Invoice, InvoiceLine
from billing.selectors import invoice_balance
from billing.services import (
    invoice_consultation_add,
    invoice_create_for_consultation,
    invoice_credit,
    invoice_discard,
    invoice_finalise,
    invoice_line_add,
    invoice_line_remove,
    invoice_line_update,
    payment_record,
)
from labs.services import referral_create, referral_line_remove
from pims.models import AuditEvent
from tests.billing.invoicing import practice
from tests.factories import ClientFactory, lab_item

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def clinic():
    return practice()


def test_draft_takes_the_visits_charges_with_their_prices(clinic):
    clinic.charge("Consultation", "45.00")
    clinic.charge("Vaccine", "19.99", "3")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    assert invoice.status == "draft" and invoice.number is None
    assert invoice.client == clinic.client
    assert list(invoice.consultations.all()) == [clinic.consultation]
    lines = list(invoice.lines.order_by("position"))
    assert [
        (line.description, line.quantity, line.unit_price, line.vat_rate) for line in lines
    ] == [
        ("Consultation", D("1"), D("45.00"), D("25.50")),
        ("Vaccine", D("3"), D("19.99"), D("25.50")),
    ]
    assert set(ConsultationLine.objects.values_list("invoice_id", flat=True)) == {invoice.pk}
    assert AuditEvent.objects.filter(action="invoice.created", subject_id=str(invoice.pk)).exists()


def test_a_visit_with_nothing_left_to_invoice_is_refused(clinic):
    with pytest.raises(ValidationError, match="no charges left to invoice"):
        invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    clinic.charge("Consultation", "45.00")
    invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    with pytest.raises(ValidationError, match="no charges left to invoice"):
        invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)


def test_charges_added_after_invoicing_go_on_the_next_invoice(clinic):
    clinic.charge("Consultation", "45.00")
    first = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    invoice_finalise(invoice=first, finalised_by=clinic.vet)
    late = clinic.charge("Blood test", "89.00")
    second = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    assert [line.consultation_line for line in second.lines.all()] == [late]
    assert first.lines.count() == 1


def test_draft_lines_can_be_changed_without_touching_the_visit(clinic):
    charge = clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    line = invoice.lines.get()
    invoice_line_update(
        line=line,
        description="Consultation, long",
        quantity="2",
        unit_price="50.00",
        vat_rate="14",
        updated_by=clinic.vet,
    )
    line.refresh_from_db()
    assert (line.description, line.quantity, line.unit_price, line.vat_rate) == (
        "Consultation, long",
        D("2"),
        D("50.00"),
        D("14"),
    )
    charge.refresh_from_db()
    assert charge.unit_price == D("45.00")


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"quantity": "0"}, "more than zero"),
        ({"unit_price": "-1"}, "cannot be negative"),
        ({"unit_price": "1.005"}, "whole cents"),
        ({"description": "  "}, "cannot be empty"),
        ({"vat_rate": "150"}, "0 to 100"),
    ],
)
def test_bad_line_changes_are_refused(clinic, changes, message):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    with pytest.raises(ValidationError, match=message):
        invoice_line_update(line=invoice.lines.get(), updated_by=clinic.vet, **changes)


def test_removing_a_draft_line_frees_its_charge_for_the_next_invoice(clinic):
    kept = clinic.charge("Consultation", "45.00")
    removed = clinic.charge("Nail clipping", "15.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice_line_remove(line=invoice.lines.get(consultation_line=removed), removed_by=clinic.vet)
    removed.refresh_from_db()
    kept.refresh_from_db()
    assert removed.invoice_id is None and kept.invoice_id == invoice.pk
    later = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    assert [line.description for line in later.lines.all()] == ["Nail clipping"]


def test_discarding_a_draft_frees_all_its_charges(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice_discard(invoice=invoice, discarded_by=clinic.vet)
    assert not Invoice.objects.exists()
    assert ConsultationLine.objects.get().invoice_id is None


def test_another_visit_of_the_same_client_joins_the_draft(clinic):
    clinic.charge("Consultation", "45.00")
    other = clinic.visit()
    clinic.charge("Vaccine", "30.00", consultation=other)
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice_consultation_add(invoice=invoice, consultation=other, added_by=clinic.vet)
    assert set(invoice.consultations.all()) == {clinic.consultation, other}
    assert invoice.lines.count() == 2


def test_another_clients_visit_cannot_join_the_draft(clinic):
    clinic.charge("Consultation", "45.00")
    stranger = clinic.visit(client=ClientFactory())
    clinic.charge("Vaccine", "30.00", consultation=stranger)
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    with pytest.raises(ValidationError, match="another client"):
        invoice_consultation_add(invoice=invoice, consultation=stranger, added_by=clinic.vet)


def test_finalising_numbers_the_invoice_and_stores_rounded_amounts(clinic):
    clinic.charge("Vaccine", "19.99", "3")
    clinic.charge("Tiny", "0.01")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    year = invoice.issued_at.astimezone(clinic.department.zone).year
    assert invoice.number == f"{year}-000001"
    assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
        D("47.79"),
        D("12.19"),
        D("59.98"),
    )
    stored = [(line.net, line.vat, line.gross) for line in invoice.lines.order_by("position")]
    assert stored == [(D("47.78"), D("12.19"), D("59.97")), (D("0.01"), D("0.00"), D("0.01"))]
    assert invoice.due_date == invoice.issued_at.astimezone(
        clinic.department.zone
    ).date() + dt.timedelta(days=14)
    assert invoice.recipient.splitlines() == [
        "Maria Virtanen",
        "Porthaninkatu 3 A 5",
        "00530 Helsinki",
    ]


def test_net_price_list_adds_vat_on_top():
    clinic = practice(prices_include_vat=False)
    clinic.charge("Vaccine", "19.99", "3")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    assert invoice.prices_include_vat is False
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
        D("59.97"),
        D("15.29"),
        D("75.26"),
    )


def test_a_final_invoice_cannot_be_changed(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    line = invoice.lines.get()
    item = clinic.item("Extra", "5.00")
    for attempt in (
        lambda: invoice_line_update(line=line, quantity="2", updated_by=clinic.vet),
        lambda: invoice_line_remove(line=line, removed_by=clinic.vet),
        lambda: invoice_line_add(invoice=invoice, item=item, added_by=clinic.vet),
        lambda: invoice_finalise(invoice=invoice, finalised_by=clinic.vet),
        lambda: invoice_discard(invoice=invoice, discarded_by=clinic.vet),
    ):
        with pytest.raises(ValidationError, match="is final and cannot be changed"):
            attempt()
    line.refresh_from_db()
    assert line.quantity == D("1") and InvoiceLine.objects.count() == 1


def test_an_empty_draft_is_not_finalised(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice_line_remove(line=invoice.lines.get(), removed_by=clinic.vet)
    with pytest.raises(ValidationError, match="at least one line"):
        invoice_finalise(invoice=invoice, finalised_by=clinic.vet)


def test_numbers_run_per_department_and_restart_each_local_year(clinic, monkeypatch):
    other = practice(name="Other clinic")

    def issue(at, place):
        monkeypatch.setattr("django.utils.timezone.now", lambda: at)
        place.charge("Consultation", "45.00")
        invoice = invoice_create_for_consultation(
            consultation=place.consultation, created_by=place.vet
        )
        return invoice_finalise(invoice=invoice, finalised_by=place.vet).number

    december = dt.datetime(2026, 12, 31, 21, 0, tzinfo=dt.UTC)  # 23:00 in Helsinki
    new_year = dt.datetime(2026, 12, 31, 22, 30, tzinfo=dt.UTC)  # 00:30 on 1 January
    assert issue(december, clinic) == "2026-000001"
    assert issue(december, clinic) == "2026-000002"
    assert issue(december, other) == "2026-000001"
    assert issue(new_year, clinic) == "2027-000001"
    assert issue(new_year, clinic) == "2027-000002"


def test_credit_note_mirrors_the_invoice_and_settles_it(clinic):
    clinic.charge("Vaccine", "19.99", "3")
    clinic.charge("Tiny", "0.01")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    note = invoice_credit(invoice=invoice, reason="Charged twice", created_by=clinic.vet)
    assert note.kind == "credit_note" and note.status == "final"
    assert note.credits == invoice and note.reason == "Charged twice"
    year = invoice.number.split("-")[0]
    assert note.number == f"{year}-000002"
    assert (note.total_net, note.total_vat, note.total_gross) == (
        -invoice.total_net,
        -invoice.total_vat,
        -invoice.total_gross,
    )
    assert [line.quantity for line in note.lines.order_by("position")] == [D("-3"), D("-1")]
    balance = invoice_balance(invoice)
    assert balance.due == 0 and balance.status == "credited"
    # Without release the charges stay invoiced (a write-off).
    assert not ConsultationLine.objects.filter(invoice__isnull=True).exists()


def test_credit_with_release_lets_the_visit_be_invoiced_again(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    invoice_credit(invoice=invoice, reason="Wrong price", created_by=clinic.vet, release_lines=True)
    again = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    assert again.lines.count() == 1


def test_an_invoice_is_credited_once_and_only_when_final(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    with pytest.raises(ValidationError, match="draft is not credited"):
        invoice_credit(invoice=invoice, reason="x", created_by=clinic.vet)
    invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    with pytest.raises(ValidationError, match="reason"):
        invoice_credit(invoice=invoice, reason=" ", created_by=clinic.vet)
    note = invoice_credit(invoice=invoice, reason="Goodwill", created_by=clinic.vet)
    with pytest.raises(ValidationError, match="already been credited"):
        invoice_credit(invoice=invoice, reason="Again", created_by=clinic.vet)
    with pytest.raises(ValidationError, match="credit note cannot be credited"):
        invoice_credit(invoice=note, reason="Again", created_by=clinic.vet)


def test_a_paid_then_credited_invoice_owes_the_client_its_money(clinic):
    clinic.charge("Consultation", "45.00")
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    payment_record(invoice=invoice, amount="45.00", method="card", recorded_by=clinic.vet)
    invoice_credit(invoice=invoice, reason="Goodwill", created_by=clinic.vet)
    balance = invoice_balance(invoice)
    assert balance.balance == D("-45.00") and balance.status == "overpaid"


def test_a_charge_freed_by_a_credit_note_can_still_be_removed_with_its_lab_line(clinic):
    t4 = lab_item(clinic.department, "T4", name="Total T4", price="40.00")
    referral = referral_create(consultation=clinic.consultation, items=[t4], created_by=clinic.vet)
    invoice = invoice_create_for_consultation(
        consultation=clinic.consultation, created_by=clinic.vet
    )
    invoice = invoice_finalise(invoice=invoice, finalised_by=clinic.vet)
    with pytest.raises(ValidationError, match="already invoiced"):
        referral_line_remove(line=referral.lines.get(), removed_by=clinic.vet)
    invoice_credit(invoice=invoice, reason="Not done", created_by=clinic.vet, release_lines=True)
    referral_line_remove(line=referral.lines.get(), removed_by=clinic.vet)
    printed = invoice.lines.get()
    assert printed.consultation_line is None
    assert (printed.description, printed.gross) == ("Total T4", D("40.00"))
