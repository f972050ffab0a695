"""The printed invoice, read back with pdftotext."""

import re

import pytest

from billing.models import BillingSettings
from billing.pdf import invoice_pdf
from billing.services import (
    invoice_create_for_consultation,
    invoice_credit,
    invoice_finalise,
    payment_record,
)
from tests.billing.invoicing import practice
from tests.documents.pdftools import pdf_text, pdf_to_pngs

pytestmark = pytest.mark.django_db


def _row(text: str, *cells: str) -> bool:
    pattern = r"\s+".join(re.escape(cell) for cell in cells)
    return any(re.search(pattern, line) for line in text.splitlines())


@pytest.fixture
def clinic():
    return practice()


@pytest.fixture
def invoice(clinic):
    clinic.charge("Consultation", "45.00")
    clinic.charge("Vaccine DHPPi", "19.99", "3")
    clinic.charge("Glucose (in the Chem 10)", "0.00")
    clinic.charge("Food, 2 kg", "24.90", rate="14.00")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    return invoice_finalise(invoice=draft, finalised_by=clinic.vet)


def test_invoice_pdf_prints_clinic_client_lines_and_totals(invoice, tmp_path):
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "Kallio Animal Clinic" in text and "+358 9 123 4567" in text
    assert "Invoice" in text and invoice.number in text
    assert "Maria Virtanen" in text and "Porthaninkatu 3 A 5" in text
    assert _row(text, "Consultation", "1", "45.00", "25.5 %", "45.00")
    assert _row(text, "Vaccine DHPPi", "3", "19.99", "25.5 %", "59.97")
    assert _row(text, "Food, 2 kg", "1", "24.90", "14 %", "24.90")
    assert _row(text, "Total excluding VAT", f"{invoice.total_net}")
    assert _row(text, "VAT", f"{invoice.total_vat}")
    assert _row(text, "Total EUR", "129.87")
    # VAT per rate: 104.97 gross at 25.5 % and 24.90 at 14 %.
    assert _row(text, "25.5 %", "83.64", "21.33", "104.97")
    assert _row(text, "14 %", "21.84", "3.06", "24.90")
    assert f"Please pay EUR 129.87 by {invoice.due_date:%Y-%m-%d}" in text
    assert "Page 1 of 1" in text


def test_zero_price_lines_print_unless_the_department_hides_them(clinic, invoice, tmp_path):
    shown = pdf_text(invoice_pdf(invoice), tmp_path)
    assert _row(shown, "Glucose (in the Chem 10)", "1", "0.00")

    BillingSettings.objects.filter(department=clinic.department).update(hide_zero_price_lines=True)
    hidden = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "Glucose (in the Chem 10)" not in hidden
    assert "Consultation" in hidden
    # The totals are the same either way: the line stays on the invoice.
    for label in ("Total excluding VAT", "Total EUR"):
        assert (
            re.search(rf"{label}\s+([\d.,]+)", hidden)[1]
            == re.search(rf"{label}\s+([\d.,]+)", shown)[1]
        )
    assert invoice.lines.count() == 4


def test_a_part_paid_invoice_prints_what_is_left(clinic, invoice, tmp_path):
    payment_record(invoice=invoice, amount="100.00", method="card", recorded_by=clinic.vet)
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert _row(text, "Paid", "100.00")
    assert _row(text, "Balance due EUR", "29.87")
    assert "Please pay EUR 29.87" in text


def test_net_price_invoice_adds_vat_below(tmp_path):
    clinic = practice(prices_include_vat=False)
    clinic.charge("Vaccine", "19.99", "3")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    invoice = invoice_finalise(invoice=draft, finalised_by=clinic.vet)
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "exclude VAT" in text
    assert _row(text, "Vaccine", "3", "19.99", "25.5 %", "59.97")
    assert _row(text, "Total excluding VAT", "59.97")
    assert _row(text, "VAT", "15.29")
    assert _row(text, "Total EUR", "75.26")


def test_credit_note_pdf_names_the_invoice_it_cancels(clinic, invoice, tmp_path):
    note = invoice_credit(invoice=invoice, reason="Charged twice", created_by=clinic.vet)
    text = pdf_text(invoice_pdf(note), tmp_path)
    assert "Credit note" in text and note.number in text
    assert invoice.number in text and "Charged twice" in text
    assert _row(text, "Total credited EUR", "-129.87")


def test_a_draft_prints_as_a_draft_without_a_number(clinic, tmp_path):
    clinic.charge("Consultation", "45.00")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    text = pdf_text(invoice_pdf(draft), tmp_path)
    assert "Draft invoice" in text
    assert "not valid for payment" in text
    assert "Please pay" not in text


def test_invoice_pages_render_as_images(clinic, invoice, tmp_path):
    payment_record(invoice=invoice, amount="29.87", method="cash", recorded_by=clinic.vet)
    pngs = pdf_to_pngs(invoice_pdf(invoice), tmp_path / "png")
    assert pngs and all(path.stat().st_size > 5000 for path in pngs)
