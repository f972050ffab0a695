"""The vet's day in a real browser: find the patient, order a Chem 17, see results arrive."""

import re

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from playwright.sync_api import expect

from integrations.ivls.services import connection_configure
from labs.models import Referral
from pims.models import Membership
from tests.e2e.conftest import sign_in
from tests.factories import ConsultationFactory, PatientFactory, WeightFactory
from tests.ui.conftest import member
from tests.ui.helpers import CHEM17, chem17_catalog

pytestmark = pytest.mark.browser

IVLS_PASSWORD = "shared-ivls-secret-1"


def interlink_result(referral: Referral) -> bytes:
    """A Catalyst result file for the referral, as InterLink writes it."""
    patient = referral.consultation.patient
    client = patient.client
    assays = "".join(
        f'<assay_result assay_name="{code}"><result_value_uom_cd>{unit}</result_value_uom_cd>'
        f"<result_value>{value}</result_value><assay_reference_range>"
        f"<low>{low or ''}</low><high>{high or ''}</high></assay_reference_range>"
        "<result_qualifier>=</result_qualifier></assay_result>"
        for code, _name, unit, value, low, high in CHEM17
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<message message_id="1" message_dt="11/22/2026 02:03:11.100 PM" message_type="Result"'
        ' message_sub_type="New_Results" message_dtd_version_number="2.0">'
        "<header><from_application_id>ivls</from_application_id><to_application_id>pims"
        "</to_application_id></header><body>"
        f'<result requisition_number="{referral.number}" diagnostic_set_id="20261122_140311_17"'
        ' instrument="Catalyst_One"><run_dt>11/22/2026 02:03:11.880 PM</run_dt>'
        f'<client client_id="{client.pk}"><first_name>{client.first_name}</first_name>'
        f"<last_name>{client.last_name}</last_name></client>"
        f'<patient patient_id="{patient.pk}" patient_species="CANINE"'
        f' patient_gender="FEMALE_SPAYED"><patient_name>{patient.name}</patient_name>'
        "<patient_breed>Labrador Retriever</patient_breed><patient_birth_dt>03/14/2019"
        '</patient_birth_dt><patient_weight patient_weight_uom="kgs"><weight>27.4</weight>'
        "</patient_weight></patient><doctor><first_name>Anna</first_name><last_name>Korhonen"
        f"</last_name></doctor><results>{assays}</results></result></body></message>"
    ).encode()


def deliver_results(referral: Referral) -> None:
    """The plug-in posts the result file; matching runs (eagerly in the tests)."""
    plugin = HttpClient()
    response = plugin.post(
        reverse("ivls_api:results"),
        data=interlink_result(referral),
        content_type="application/xml",
        HTTP_AUTHORIZATION=basic(str(referral.department_id), IVLS_PASSWORD),
        HTTP_X_FILE_NAME="chem17.xml",
    )
    assert response.status_code == 201, response.content


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def clinic(transactional_db):
    from tests.factories import DepartmentFactory

    department = DepartmentFactory(name="Helsinki Centre")
    connection_configure(department=department, enabled=True, password=IVLS_PASSWORD)
    vet = member(department, Membership.ROLE_VET, username="vet1")
    patient = PatientFactory(name="Rosa", microchip="985112003456789")
    WeightFactory(patient=patient)
    chem17_catalog(department)
    return department, vet, patient


def test_vet_orders_chem17_and_sees_results_arrive_without_reload(live_server, page, clinic, shots):
    department, vet, patient = clinic
    sign_in(page, live_server, vet)

    page.get_by_label("Search by name, phone, e-mail or microchip").fill("Rosa")
    page.get_by_role("link", name="Rosa", exact=True).click()
    expect(page.get_by_role("heading", name="Rosa")).to_be_visible()
    shots(page, "patient")
    page.get_by_label("Reason for the visit").fill("Drinking a lot")
    page.get_by_role("button", name=re.compile("Start consultation")).click()
    expect(page.get_by_role("heading", name="Laboratory")).to_be_visible()

    page.get_by_role("button", name="Add lab analyses").click()
    dialog = page.get_by_role("dialog", name="Add laboratory analyses")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Search by name or Code").fill("chem17")
    option = dialog.locator("label.option", has_text="Catalyst Chem 17")
    expect(option).to_contain_text("IVLS")
    expect(dialog.locator("label.option", has_text="Albumin")).to_have_count(0)
    option.get_by_role("checkbox").check()
    # Filtering again keeps what is ticked.
    dialog.get_by_label("Search by name or Code").fill("albumin")
    expect(dialog.locator("label.option", has_text="Albumin/globulin ratio")).to_be_visible()
    expect(option.get_by_role("checkbox")).to_be_checked()
    shots(page, "dialog")
    dialog.get_by_role("button", name="Save referral").click()
    expect(dialog).to_have_count(0)

    referral = Referral.objects.get(consultation__patient=patient)
    number = page.locator(".ref-number", has_text=str(referral.number))
    expect(number).to_have_class(re.compile("status-queued"))
    expect(page.locator(f"#referral-{referral.pk} .status-word")).to_have_text("queued")
    page.evaluate("window.__sameDocument = true")

    deliver_results(referral)

    # htmx polling brings the results in: same document, no reload.
    expect(number).to_have_class(re.compile("status-complete"), timeout=15000)
    expect(page.locator(f"#referral-{referral.pk} .status-word")).to_have_text("complete")
    assert page.evaluate("window.__sameDocument") is True
    glucose = page.locator('tr[data-code="GLU"]')
    expect(glucose).to_contain_text("66")
    expect(glucose).to_contain_text("mg/dL")
    expect(glucose).to_contain_text("74–143")
    expect(glucose.locator("td.flag")).to_have_text("L")
    expect(page.locator('tr[data-code="ALKP"] td.flag')).to_have_text("H")
    color = number.evaluate("el => getComputedStyle(el).backgroundColor")
    assert color == "rgb(23, 128, 61)"  # green
    # Polling stops once nothing waits.
    expect(page.locator("#lab-section")).not_to_have_attribute("data-polling", "true")
    shots(page, "results", full_page=True)


def test_vet_of_another_department_gets_404_for_a_consultation(live_server, page, clinic):
    from tests.factories import DepartmentFactory

    department, _vet, patient = clinic
    consultation = ConsultationFactory(department=department, patient=patient)
    stranger = member(DepartmentFactory(name="Espoo"), Membership.ROLE_VET, username="vet2")
    sign_in(page, live_server, stranger)
    response = page.goto(
        live_server.url + reverse("labs:consultation_detail", args=[consultation.pk])
    )
    assert response.status == 404
    assert "Rosa" not in page.content()
