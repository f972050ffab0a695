"""Who sees what: department membership and roles, through pims.access."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from labs.models import ResultDocument
from labs.services import referral_create
from pims.access import SESSION_KEY
from pims.models import Membership
from pims.permissions import CHANGE_SETTINGS, has_permission
from tests.factories import ConsultationFactory, MembershipFactory, lab_item
from tests.ui.conftest import member, signed_in


@pytest.fixture
def referral(consultation, department, vet):
    return referral_create(
        consultation=consultation, items=[lab_item(department, "UA")], created_by=vet
    )


def department_urls(consultation, referral):
    line = referral.lines.get()
    return [
        ("get", reverse("labs:consultation_detail", args=[consultation.pk])),
        ("get", reverse("labs:lab_section", args=[consultation.pk])),
        ("get", reverse("labs:lab_dialog", args=[consultation.pk])),
        ("post", reverse("labs:referral_create", args=[consultation.pk])),
        ("post", reverse("labs:referral_cancel", args=[referral.pk])),
        ("post", reverse("labs:line_remove", args=[line.pk])),
        ("post", reverse("labs:result_enter", args=[line.pk])),
        ("get", reverse("labs:line_history", args=[line.pk])),
    ]


def test_vet_of_another_department_gets_404_for_every_consultation_url(
    consultation, referral, other_department
):
    outsider = signed_in(member(other_department, username="vet-b"))
    for method, url in department_urls(consultation, referral):
        assert getattr(outsider, method)(url).status_code == 404, url
    referral.refresh_from_db()
    assert referral.status == "open"


def test_member_sees_the_consultation(vet_client, consultation, referral):
    for method, url in department_urls(consultation, referral)[:3]:
        assert getattr(vet_client, method)(url).status_code == 200, url


def test_signed_out_visitor_is_sent_to_sign_in(client, consultation, referral):
    response = client.get(reverse("labs:consultation_detail", args=[consultation.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get(reverse("patients:search")).status_code == 302


@pytest.mark.parametrize(
    "url_name", ["ivls_settings", "labs:item_list", "labs:item_create", "labs:panel_create"]
)
def test_settings_and_item_list_need_the_admin_role(
    department, vet_client, admin_client_, url_name
):
    assert vet_client.get(reverse(url_name)).status_code == 403
    assert admin_client_.get(reverse(url_name)).status_code == 200


def test_pages_agree_with_the_permission_map(department, vet, admin_user):
    assert not has_permission(vet, department, CHANGE_SETTINGS)
    assert has_permission(admin_user, department, CHANGE_SETTINGS)


def test_switcher_lists_own_departments_and_switches(department, other_department, vet):
    MembershipFactory(user=vet, department=other_department, role=Membership.ROLE_VET)
    http = signed_in(vet)
    html = http.get(reverse("patients:search")).content.decode()
    assert "Helsinki Centre (Vet)" in html and "Espoo (Vet)" in html
    response = http.post(
        reverse("department_switch"),
        {"department": other_department.pk, "next": reverse("labs:worklist")},
    )
    assert response["Location"] == reverse("labs:worklist")
    assert http.session[SESSION_KEY] == other_department.pk
    html = http.get(reverse("labs:worklist")).content.decode()
    assert "Lab worklist · Espoo" in html


def test_switching_to_a_department_one_does_not_belong_to_is_404(
    vet_client, department, other_department
):
    response = vet_client.post(reverse("department_switch"), {"department": other_department.pk})
    assert response.status_code == 404
    assert vet_client.session.get(SESSION_KEY) != other_department.pk


def test_opening_a_consultation_of_another_own_department_moves_work_there(
    department, other_department, vet, patient
):
    MembershipFactory(user=vet, department=other_department, role=Membership.ROLE_VET)
    elsewhere = ConsultationFactory(department=other_department, patient=patient, vet=vet)
    http = signed_in(vet)
    http.post(reverse("department_switch"), {"department": department.pk})
    assert http.get(reverse("labs:consultation_detail", args=[elsewhere.pk])).status_code == 200
    assert http.session[SESSION_KEY] == other_department.pk


def test_consultations_of_other_departments_are_not_listed_on_the_patient(
    vet_client, consultation, other_department, patient
):
    hidden = ConsultationFactory(department=other_department, patient=patient)
    html = vet_client.get(reverse("patients:patient_detail", args=[patient.pk])).content.decode()
    assert reverse("labs:consultation_detail", args=[consultation.pk]) in html
    assert reverse("labs:consultation_detail", args=[hidden.pk]) not in html


def test_ivls_report_is_served_only_to_members(referral, department, other_department, vet):
    document = ResultDocument(
        referral=referral, unit_key=str(department.pk), sha256="a" * 64, diagnostic_set_id="d1"
    )
    document.pdf.save("d1.pdf", ContentFile(b"%PDF-1.4 test"), save=False)
    document.save()
    url = reverse("labs:document_download", args=[document.pk])
    response = signed_in(vet).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    outsider = signed_in(member(other_department, username="vet-c"))
    assert outsider.get(url).status_code == 404


def test_user_without_membership_is_refused(db, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="lonely"))
    assert client.get(reverse("patients:search")).status_code == 403
