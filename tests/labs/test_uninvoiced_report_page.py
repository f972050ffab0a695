"""The report of lab work not invoiced: served by labs at the path billing's reports page always
linked, and reached from that page by its tab."""

import pytest
from django.urls import reverse

from labs.services import referral_create, result_record
from tests.billing.invoicing import practice
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory, lab_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic():
    clinic = practice()
    usg = lab_item(clinic.department, "USG", name="Urine SG", price="12.00")
    referral = referral_create(consultation=clinic.consultation, items=[usg], created_by=clinic.vet)
    result_record(line=referral.lines.get(), value="1.030", entered_by=clinic.vet)
    return clinic


@pytest.fixture
def signed_in(client, clinic):
    client.force_login(clinic.vet)
    return client


def test_report_keeps_the_path_it_had_under_billing():
    assert reverse("labs:uninvoiced_report") == "/billing/reports/uninvoiced-lab/"
    assert reverse("labs:uninvoiced_report_csv") == "/billing/reports/uninvoiced-lab.csv"


def test_billing_reports_page_links_to_it_and_it_shows_the_lab_work(signed_in):
    billing_page = signed_in.get(reverse("billing:reports")).content.decode()
    assert f'href="{reverse("labs:uninvoiced_report")}?' in billing_page
    page = signed_in.get(reverse("labs:uninvoiced_report"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Urine SG" in html and "12.00" in html
    tab = f'href="{reverse("labs:uninvoiced_report")}?" aria-current="page"'
    assert tab in html
    # Both the top bar's Reports entry and billing's Reports tab stay the current ones here.
    assert html.count(f'href="{reverse("billing:reports")}" aria-current="page"') == 2


def test_csv_lists_the_lab_work_with_a_total(signed_in):
    response = signed_in.get(reverse("labs:uninvoiced_report_csv"))
    assert response["Content-Disposition"].startswith('attachment; filename="uninvoiced-lab-')
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("Visit date,Referral,")
    assert "Urine SG" in lines[1]
    assert lines[-1].startswith("Total,")


def test_another_departments_lab_work_is_not_listed(client, clinic):
    other = DepartmentFactory()
    outsider = UserFactory()
    MembershipFactory(user=outsider, department=other)
    client.force_login(outsider)
    html = client.get(reverse("labs:uninvoiced_report")).content.decode()
    assert "Urine SG" not in html


def test_report_needs_sign_in(client):
    response = client.get(reverse("labs:uninvoiced_report"))
    assert response.status_code == 302 and "/login/" in response["Location"]
