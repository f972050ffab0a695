"""The admin's IVLS set-up and the review queue, in a real browser."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from integrations.ivls.models import IVLSConnection
from integrations.ivls.passwords import password_matches
from labs.models import LabRun
from labs.rundata import AssayData, RunData
from labs.services import referral_create, run_record
from pims.models import Membership
from tests.e2e.conftest import sign_in
from tests.factories import ConsultationFactory, DepartmentFactory, PatientFactory
from tests.ui.conftest import member
from tests.ui.helpers import chem17_catalog

pytestmark = pytest.mark.browser


def test_admin_sets_up_the_ivls_connection_and_copies_the_urls(
    live_server, page, transactional_db, shots
):
    department = DepartmentFactory(name="Helsinki Centre")
    admin = member(department, Membership.ROLE_ADMIN, username="admin1")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="IDEXX VetLab Station").click()
    expect(page.get_by_role("heading", name=re.compile("IDEXX VetLab Station"))).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Never heard from")).to_be_visible()

    page.get_by_label("New password", exact=True).fill("clinic-ivls-pass-77")
    page.get_by_label("New password again").fill("clinic-ivls-pass-77")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("The IVLS password was changed for Helsinki Centre.")).to_be_visible()
    page.get_by_label(re.compile("^Enabled")).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The connection is enabled.")).to_be_visible()
    connection = IVLSConnection.objects.get(department=department)
    assert connection.enabled and password_matches(
        "clinic-ivls-pass-77", connection.password_digest
    )

    page.get_by_role("button", name="Copy the Work Request Service URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        live_server.url + "/api/ivls/v1/work-requests/"
    )
    page.get_by_role("button", name="Copy the Results Service URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        live_server.url + "/api/ivls/v1/results/"
    )
    expect(page.get_by_role("textbox", name="Unit ID")).to_have_value(str(department.pk))

    page.get_by_role("button", name="Generate a password").click()
    generated = page.get_by_role("textbox", name="Generated password").input_value()
    assert len(generated) >= 12
    connection.refresh_from_db()
    assert password_matches(generated, connection.password_digest)
    shots(page, "ivls-settings", full_page=True)
    page.goto(page.url)  # a fresh GET, as when the admin comes back later
    expect(page.get_by_role("textbox", name="Generated password")).to_have_count(0)
    assert generated not in page.content()


def test_needs_review_run_is_attached_from_the_queue(live_server, page, transactional_db, shots):
    department = DepartmentFactory(name="Helsinki Centre")
    nurse = member(department, Membership.ROLE_NURSE, username="nurse1")
    order, _ = chem17_catalog(department)
    patient = PatientFactory(name="Rosa")
    consultation = ConsultationFactory(department=department, patient=patient)
    referral = referral_create(consultation=consultation, items=[order])
    run = run_record(
        departments=[department],
        run=RunData(
            run_id="20261122_101010_5",
            instrument="Catalyst_One",
            requisition_number=str(referral.number),
            patient_name="Rosa V",
            client_last_name="Virtanen",
            assays=(
                AssayData("GLU", "117", Decimal("117"), "mg/dL", Decimal("74"), Decimal("143")),
            ),
        ),
    )
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    sign_in(page, live_server, nurse)
    page.get_by_role("link", name="Review queue").click()
    card = page.locator(f"#run-{run.pk}")
    expect(card).to_contain_text("Rosa V")
    expect(card).to_contain_text("117")
    expect(card).to_contain_text("Identity check failed")
    expect(card.get_by_role("button", name="Confirm and attach")).to_be_visible()
    card.get_by_label("Referral number, patient or client").fill("Rosa")
    choice = card.get_by_role("radio", name=re.compile(str(referral.number)))
    expect(choice).to_be_visible()
    choice.check()
    card.get_by_label("Same animal even if the names or ids differ").check()
    shots(page, "review-queue", full_page=True)
    card.get_by_role("button", name="Attach", exact=True).click()
    expect(page.get_by_text(f"attached to referral {referral.number}")).to_be_visible()
    expect(page.locator(f"#run-{run.pk}")).to_have_count(0)
    run.refresh_from_db()
    assert run.referral == referral and run.review_state == LabRun.STATE_MATCHED

    page.goto(live_server.url + reverse("labs:consultation_detail", args=[consultation.pk]))
    expect(page.locator('tr[data-code="GLU"]')).to_contain_text("117")
