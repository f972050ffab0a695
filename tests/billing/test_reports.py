"""Reports per department and period: revenue, money collected, balances, unbilled lab work."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.reports import (
    Period,
    outstanding_report,
    payments_report,
    report_csv,
    revenue_report,
)
from billing.services import (
    invoice_create_for_consultation,
    invoice_credit,
    invoice_finalise,
    payment_record,
    refund_record,
)
from labs.models import LabRun, Result
from labs.reports import uninvoiced_lab_report
from labs.services import referral_create, result_record
from tests.billing.invoicing import practice
from tests.factories import ClientFactory, ivls_item, lab_item

pytestmark = pytest.mark.django_db

D = Decimal


def issue(clinic, consultation, *charges):
    for name, price in charges:
        clinic.charge(name, price, consultation=consultation)
    draft = invoice_create_for_consultation(consultation=consultation, created_by=clinic.vet)
    return invoice_finalise(invoice=draft, finalised_by=clinic.vet)


@pytest.fixture
def clinic():
    return practice()


@pytest.fixture
def today(clinic):
    return timezone.localdate(timezone.now(), clinic.department.zone)


def test_revenue_sums_final_invoices_less_credit_notes(clinic, today):
    first = issue(clinic, clinic.consultation, ("Vaccine", "59.97"), ("Food", "10.00"))
    second = issue(clinic, clinic.visit(), ("Consultation", "45.00"))
    invoice_credit(invoice=second, reason="Goodwill", created_by=clinic.vet)
    clinic.charge("Still a draft", "100.00", consultation=clinic.visit())
    invoice_create_for_consultation(
        consultation=clinic.charge("x", "1.00").consultation, created_by=clinic.vet
    )
    other = practice(name="Other clinic")
    issue(other, other.consultation, ("Elsewhere", "500.00"))

    report = revenue_report(clinic.department, Period(today, today))
    assert [invoice.number for invoice in report.invoices] == [
        first.number,
        second.number,
        second.credit_notes.get().number,
    ]
    assert report.totals.gross == first.total_gross == D("69.97")
    assert report.totals.net + report.totals.vat == report.totals.gross
    assert report.credited.gross == D("-45.00")
    assert dict(report.by_rate)[D("25.50")].gross == D("69.97")


def test_revenue_counts_the_departments_local_day(clinic, monkeypatch):
    # 23:30 UTC on 31 May is 02:30 on 1 June in Helsinki.
    late = dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: late)
    issue(clinic, clinic.consultation, ("Vaccine", "30.00"))
    may = revenue_report(clinic.department, Period(dt.date(2026, 5, 1), dt.date(2026, 5, 31)))
    june = revenue_report(clinic.department, Period(dt.date(2026, 6, 1), dt.date(2026, 6, 30)))
    assert (len(may.invoices), len(june.invoices)) == (0, 1)


def test_payments_collected_are_net_of_refunds_by_method(clinic, today):
    invoice = issue(clinic, clinic.consultation, ("Surgery", "300.00"))
    card = payment_record(invoice=invoice, amount="200.00", method="card", recorded_by=clinic.vet)
    payment_record(invoice=invoice, amount="100.00", method="cash", recorded_by=clinic.vet)
    refund_record(payment=card, amount="50.00", reason="Discount", recorded_by=clinic.vet)

    report = payments_report(clinic.department, Period(today, today))
    assert (report.received, report.refunded, report.net) == (
        D("300.00"),
        D("50.00"),
        D("250.00"),
    )
    assert report.by_method == [
        ("Cash", D("100.00"), D("0"), D("100.00")),
        ("Card", D("200.00"), D("50.00"), D("150.00")),
    ]
    assert [row.amount for row in report.movements] == [D("200.00"), D("100.00"), D("-50.00")]


def test_outstanding_balances_are_grouped_by_client(clinic, today):
    rich = ClientFactory(first_name="Pekka", last_name="Aalto")
    a = issue(clinic, clinic.consultation, ("Surgery", "300.00"))
    b = issue(clinic, clinic.visit(), ("Check", "40.00"))
    payment_record(invoice=b, amount="40.00", method="card", recorded_by=clinic.vet)
    c = issue(clinic, clinic.visit(client=rich), ("Vaccine", "30.00"))
    payment_record(invoice=c, amount="35.00", method="cash", recorded_by=clinic.vet)
    payment_record(invoice=a, amount="100.00", method="cash", recorded_by=clinic.vet)

    report = outstanding_report(clinic.department)
    assert [(row.client_name, row.balance) for row in report.clients] == [
        ("Maria Virtanen", D("200.00")),
        ("Pekka Aalto", D("-5.00")),
    ]
    assert report.clients[0].oldest_due == a.due_date
    assert report.total == D("195.00")


@pytest.fixture
def lab_visit(clinic):
    """A visit with a chemistry panel (ordering item with yields), an analyte on it at zero, a
    test entered by hand and one ordered but without a result."""
    department = clinic.department
    chem = ivls_item(department, "CHEM10", name="Chem 10", yields=["GLU"], price="89.00")
    glu = lab_item(department, "GLU", name="Glucose")
    usg = lab_item(department, "USG", name="Urine SG", price="12.00")
    t4 = lab_item(department, "T4", name="Total T4", price="40.00")
    referral = referral_create(
        consultation=clinic.consultation, items=[chem, glu, usg, t4], created_by=clinic.vet
    )
    lines = {line.item.code: line for line in referral.lines.all()}
    run = LabRun.objects.create(
        unit_key=str(department.pk),
        referral=referral,
        instrument="Catalyst_One",
        diagnostic_set_id="r-1",
        review_state=LabRun.STATE_MATCHED,
    )
    Result.objects.create(
        run=run, referral=referral, referral_line=lines["GLU"], code="GLU", value_text="5.1"
    )
    result_record(line=lines["USG"], value="1.030", entered_by=clinic.vet)
    return referral


def test_lab_work_done_but_not_invoiced_is_listed(clinic, today, lab_visit):
    report = uninvoiced_lab_report(clinic.department, Period(today, today))
    assert [(row.line.description, row.amount.gross) for row in report.rows] == [
        ("Chem 10", D("89.00")),
        ("Glucose", D("0.00")),
        ("Urine SG", D("12.00")),
    ]
    assert report.total.gross == D("101.00")
    assert all(row.referral_number == lab_visit.number for row in report.rows)


def test_lab_work_on_a_draft_is_listed_with_it_and_gone_once_invoiced(clinic, today, lab_visit):
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    report = uninvoiced_lab_report(clinic.department, Period(today, today))
    assert {row.draft_invoice_id for row in report.rows} == {draft.pk}
    invoice_finalise(invoice=draft, finalised_by=clinic.vet)
    assert uninvoiced_lab_report(clinic.department, Period(today, today)).rows == []


def test_reports_write_csv_with_a_total_row(clinic, today):
    issue(clinic, clinic.consultation, ("Vaccine", "59.97"))
    text = report_csv(revenue_report(clinic.department, Period(today, today)), clinic.department)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Number", "Kind", "Issued", "Client", "Net", "VAT", "Gross"]
    assert rows[1][1:] == [
        "Invoice",
        today.isoformat(),
        "Maria Virtanen",
        "47.78",
        "12.19",
        "59.97",
    ]
    assert rows[-1] == ["Total", "", "", "", "47.78", "12.19", "59.97"]


def test_csv_cells_that_spreadsheets_would_run_are_defused(clinic):
    clinic.client.first_name, clinic.client.last_name = "", "=HYPERLINK(1)"
    clinic.client.save()
    invoice = issue(clinic, clinic.consultation, ("Vaccine", "10.00"))
    payment_record(invoice=invoice, amount="12.50", method="cash", recorded_by=clinic.vet)
    rows = list(
        csv.reader(
            io.StringIO(report_csv(outstanding_report(clinic.department), clinic.department))
        )
    )
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][3] == "-2.50"
