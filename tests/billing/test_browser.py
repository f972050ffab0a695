"""Invoicing a visit in a real browser: draft, edit, finalise, pay, refund, reports."""

import os
from pathlib import Path

import pytest
from django.urls import reverse

from tests.billing.invoicing import practice

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-42"  # UserFactory's


@pytest.fixture
def shot(request):
    """A PNG of the page when BILLING_SCREENSHOTS names a folder (for looking at the pages)."""
    folder = os.environ.get("BILLING_SCREENSHOTS")

    def take(page, name: str):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


def test_a_visit_is_invoiced_paid_and_partly_refunded(live_server, page, transactional_db, shot):
    clinic = practice()
    clinic.charge("Consultation", "45.00")
    clinic.charge("Vaccine DHPPi", "19.99", "3")
    clinic.charge("Glucose (in the Chem 10)", "0.00")

    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill(clinic.vet.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name="To invoice").first.click()
    shot(page, "1-to-invoice")
    page.get_by_role("button", name="Create invoice").click()
    page.get_by_text("Draft invoice created").wait_for()

    vaccine = page.get_by_role("row").filter(has=page.locator("input[value='Vaccine DHPPi']"))
    vaccine.get_by_label("Quantity").fill("2")
    vaccine.get_by_role("button", name="Save").click()
    page.get_by_text("Line saved.").wait_for()
    shot(page, "2-draft")

    page.get_by_role("button", name="Finalise invoice").click()
    issued = page.get_by_text("issued.")
    issued.wait_for()
    number = issued.inner_text().split()[1]
    assert page.get_by_role("heading", level=1).inner_text() == f"Invoice {number}"
    assert page.get_by_text("Unpaid").first.is_visible()

    page.get_by_label("Amount").fill("50.00")
    page.get_by_label("Method").select_option("cash")
    page.get_by_role("button", name="Record payment").click()
    page.get_by_text("Payment of 50.00 recorded.").wait_for()
    assert page.get_by_text("Partially paid").first.is_visible()
    shot(page, "3-part-paid")

    page.get_by_role("link", name="Refund…").click()
    page.get_by_label("Amount to refund").fill("60.00")
    page.get_by_label("Reason").fill("Second vaccine not given")
    page.get_by_role("button", name="Record refund").click()
    assert page.get_by_text("at most 50.00 can be refunded").is_visible()
    shot(page, "4-refund-refused")
    page.get_by_label("Amount to refund").fill("10.00")
    page.get_by_role("button", name="Record refund").click()
    page.get_by_text("Refund of 10.00 recorded.").wait_for()
    assert page.get_by_role("cell", name="Second vaccine not given").is_visible()

    invoice_id = int(page.url.rstrip("/").split("/")[-1])
    pdf_link = page.get_by_role("link", name="Print PDF").get_attribute("href")
    assert pdf_link == reverse("billing:invoice_pdf", args=[invoice_id])
    assert page.request.get(live_server.url + pdf_link).body().startswith(b"%PDF-")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.get_by_role("link", name="Payments collected").click()
    assert page.get_by_text("Collected").first.is_visible()
    shot(page, "5-payments-report")
    page.get_by_role("link", name="Revenue").click()
    assert page.get_by_role("cell", name=number).is_visible()
    shot(page, "6-revenue-report")
