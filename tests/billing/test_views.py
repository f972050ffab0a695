"""Billing pages: department scoping, the invoice flow, payments and reports in the browser."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Invoice, Payment, Refund
from billing.services import (
    invoice_create_for_consultation,
    invoice_finalise,
    payment_record,
    refund_record,
)
from tests.billing.invoicing import practice
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def clinic():
    return practice()


@pytest.fixture
def signed_in(client, clinic):
    client.force_login(clinic.vet)
    return client


def final_invoice(clinic, *charges):
    for name, price in charges or (("Consultation", "45.00"),):
        clinic.charge(name, price)
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    return invoice_finalise(invoice=draft, finalised_by=clinic.vet)


def test_consultation_button_creates_a_draft_and_opens_it(signed_in, clinic):
    clinic.charge("Consultation", "45.00")
    url = reverse("billing:invoice_create_for_consultation", args=[clinic.consultation.pk])
    response = signed_in.post(url)
    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:invoice_detail", args=[invoice.pk])
    page = signed_in.get(response["Location"]).content.decode()
    assert "Draft invoice" in page and "Consultation" in page and "45.00" in page


def test_consultation_button_opens_the_existing_draft_when_nothing_is_left(signed_in, clinic):
    clinic.charge("Consultation", "45.00")
    url = reverse("billing:invoice_create_for_consultation", args=[clinic.consultation.pk])
    signed_in.post(url)
    response = signed_in.post(url)
    assert response["Location"] == reverse(
        "billing:invoice_detail", args=[Invoice.objects.get().pk]
    )
    assert Invoice.objects.count() == 1


def test_consultation_button_refuses_get(signed_in, clinic):
    url = reverse("billing:invoice_create_for_consultation", args=[clinic.consultation.pk])
    assert signed_in.get(url).status_code == 405


def test_another_departments_billing_is_not_found(client, clinic):
    invoice = final_invoice(clinic)
    payment = payment_record(invoice=invoice, amount="5.00", method="cash", recorded_by=clinic.vet)
    outsider = UserFactory()
    MembershipFactory(user=outsider)  # a member of another department only
    client.force_login(outsider)
    for url in (
        reverse("billing:invoice_detail", args=[invoice.pk]),
        reverse("billing:invoice_pdf", args=[invoice.pk]),
        reverse("billing:refund_record", args=[payment.pk]),
        reverse("billing:payment_plan_create", args=[invoice.pk]),
        reverse("billing:invoice_credit", args=[invoice.pk]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        reverse("billing:invoice_create_for_consultation", args=[clinic.consultation.pk]),
        reverse("billing:payment_record", args=[invoice.pk]),
        reverse("billing:invoice_finalise", args=[invoice.pk]),
    ):
        assert client.post(url, {"amount": "1.00", "method": "cash"}).status_code == 404, url
    assert Payment.objects.count() == 1
    # Their own invoice list does not show it either.
    page = client.get(reverse("billing:invoice_list")).content.decode()
    assert invoice.number not in page


def test_billing_pages_need_sign_in(client, clinic):
    invoice = final_invoice(clinic)
    for url in (
        reverse("billing:invoice_list"),
        reverse("billing:invoice_detail", args=[invoice.pk]),
        reverse("billing:reports"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_finalise_and_pay_through_the_pages(signed_in, clinic):
    clinic.charge("Vaccine", "19.99", "3")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    response = signed_in.post(reverse("billing:invoice_finalise", args=[draft.pk]), follow=True)
    draft.refresh_from_db()
    assert draft.number and f"Invoice {draft.number} issued." in response.content.decode()

    response = signed_in.post(
        reverse("billing:payment_record", args=[draft.pk]),
        {"amount": "20.00", "method": "cash"},
        follow=True,
    )
    page = response.content.decode()
    assert "Payment of 20.00 recorded." in page
    assert "Partially paid" in page
    assert "39.97" in page  # the balance


def test_a_bad_payment_shows_the_form_again_with_the_error(signed_in, clinic):
    invoice = final_invoice(clinic)
    response = signed_in.post(
        reverse("billing:payment_record", args=[invoice.pk]), {"amount": "-3", "method": "cash"}
    )
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 0.01" in response.content.decode()
    assert not Payment.objects.exists()


def test_a_refund_above_the_payment_shows_a_clear_message(signed_in, clinic):
    invoice = final_invoice(clinic)
    payment = payment_record(invoice=invoice, amount="45.00", method="card", recorded_by=clinic.vet)
    url = reverse("billing:refund_record", args=[payment.pk])
    response = signed_in.post(url, {"amount": "50.00", "reason": "Complaint"})
    assert response.status_code == 400
    assert (
        "A refund of 50.00 is more than this payment has left to refund: 45.00 was paid, "
        "0.00 already refunded, at most 45.00 can be refunded." in response.content.decode()
    )
    response = signed_in.post(url, {"amount": "15.00", "reason": "Complaint"}, follow=True)
    assert "Refund of 15.00 recorded." in response.content.decode()
    assert Refund.objects.get().amount == D("15.00")


def test_draft_lines_are_edited_and_removed_on_the_page(signed_in, clinic):
    clinic.charge("Consultation", "45.00")
    clinic.charge("Nail clipping", "15.00")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    first, second = draft.lines.order_by("position")
    response = signed_in.post(
        reverse("billing:invoice_line_update", args=[first.pk]),
        {
            f"line{first.pk}-description": "Consultation",
            f"line{first.pk}-quantity": "2",
            f"line{first.pk}-unit_price": "40.00",
            f"line{first.pk}-vat_rate": "25.5",
        },
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.quantity, first.unit_price) == (D("2"), D("40.00"))
    signed_in.post(reverse("billing:invoice_line_remove", args=[second.pk]))
    assert list(draft.lines.values_list("description", flat=True)) == ["Consultation"]


def test_credit_note_page_issues_the_credit_note(signed_in, clinic):
    invoice = final_invoice(clinic)
    response = signed_in.post(
        reverse("billing:invoice_credit", args=[invoice.pk]), {"reason": "Charged twice"}
    )
    note = Invoice.objects.get(kind="credit_note")
    assert response["Location"] == reverse("billing:invoice_detail", args=[note.pk])
    assert note.credits == invoice


def test_payment_plan_page_previews_then_agrees(signed_in, clinic):
    invoice = final_invoice(clinic, ("Surgery", "300.00"))
    url = reverse("billing:payment_plan_create", args=[invoice.pk])
    data = {"count": "3", "first_due": "2030-01-31", "months_between": "1", "note": ""}
    preview = signed_in.post(url, {**data, "preview": ""})
    assert preview.status_code == 200 and "2030-02-28" in preview.content.decode()
    assert not invoice.payment_plans.exists()
    signed_in.post(url, {**data, "confirm": ""})
    plan = invoice.payment_plans.get()
    assert [i.amount for i in plan.instalments.all()] == [D("100.00")] * 3


def test_invoice_pdf_is_served(signed_in, clinic):
    invoice = final_invoice(clinic)
    response = signed_in.get(reverse("billing:invoice_pdf", args=[invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"invoice-{invoice.number}.pdf" in response["Content-Disposition"]


def test_invoice_list_keeps_its_query_count_flat(signed_in, clinic, django_assert_max_num_queries):
    for _ in range(12):
        visit = clinic.visit()
        clinic.charge("Consultation", "45.00", consultation=visit)
        draft = invoice_create_for_consultation(consultation=visit, created_by=clinic.vet)
        invoice = invoice_finalise(invoice=draft, finalised_by=clinic.vet)
        payment_record(invoice=invoice, amount="10.00", method="cash", recorded_by=clinic.vet)
    with django_assert_max_num_queries(12):
        response = signed_in.get(reverse("billing:invoice_list"))
    assert response.content.decode().count("Partially paid") == 12


def test_to_invoice_page_keeps_its_query_count_flat(
    signed_in, clinic, django_assert_max_num_queries
):
    for _ in range(10):
        clinic.charge("Consultation", "45.00", consultation=clinic.visit())
    with django_assert_max_num_queries(12):
        response = signed_in.get(reverse("billing:invoice_new"))
    assert response.content.decode().count("Create invoice") == 10


@pytest.mark.parametrize("kind", ["revenue", "payments", "outstanding", "uninvoiced-lab"])
def test_each_report_renders_and_downloads_as_csv(
    signed_in, clinic, kind, django_assert_max_num_queries
):
    for _ in range(5):
        visit = clinic.visit()
        clinic.charge("Consultation", "45.00", consultation=visit)
        draft = invoice_create_for_consultation(consultation=visit, created_by=clinic.vet)
        invoice = invoice_finalise(invoice=draft, finalised_by=clinic.vet)
        payment_record(invoice=invoice, amount="10.00", method="cash", recorded_by=clinic.vet)
    with django_assert_max_num_queries(15):
        page = signed_in.get(reverse("billing:report", args=[kind]))
    assert page.status_code == 200
    csv_response = signed_in.get(reverse("billing:report_csv", args=[kind]))
    assert csv_response["Content-Type"].startswith("text/csv")
    assert csv_response.content.decode().splitlines()[-1].startswith("Total")


def test_report_totals_show_in_the_page(signed_in, clinic):
    final_invoice(clinic, ("Vaccine", "19.99"), ("Vaccine", "19.99"), ("Vaccine", "19.99"))
    page = signed_in.get(reverse("billing:report", args=["revenue"])).content.decode()
    # Rounded per line: three times 15.93 + 4.06, not 47.78 + 12.19 of one line of 3.
    assert "59.97" in page and "47.79" in page and "12.18" in page


def test_unknown_report_is_not_found(signed_in):
    assert signed_in.get("/billing/reports/nonsense/").status_code == 404


def test_nav_links_to_invoices_and_reports(signed_in):
    page = signed_in.get(reverse("billing:invoice_list")).content.decode()
    assert f'href="{reverse("billing:invoice_list")}"' in page
    assert f'href="{reverse("billing:reports")}"' in page


def test_invoice_page_keeps_its_query_count_flat(signed_in, clinic, django_assert_max_num_queries):
    invoice = final_invoice(clinic, *[(f"Item {i}", "10.00") for i in range(15)])
    for _ in range(8):
        payment = payment_record(
            invoice=invoice, amount="10.00", method="cash", recorded_by=clinic.vet
        )
        refund_record(payment=payment, amount="1.00", reason="Rounding", recorded_by=clinic.vet)
    with django_assert_max_num_queries(20):
        response = signed_in.get(reverse("billing:invoice_detail", args=[invoice.pk]))
    page = response.content.decode()
    assert page.count("Rounding") == 8 and "Item 14" in page
