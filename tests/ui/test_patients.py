import pytest
from django.urls import reverse

from patients.models import Client, Consultation, Patient
from tests.factories import ClientFactory, PatientFactory


@pytest.fixture
def owners(db):
    maria = ClientFactory(
        first_name="Maria",
        last_name="Virtanen",
        phone="+358 40 111 2233",
        email="maria@example.org",
    )
    jari = ClientFactory(first_name="Jari", last_name="Lehtonen", phone="+358 50 999 0000")
    PatientFactory(client=maria, name="Rosa", microchip="985112003456789")
    PatientFactory(client=jari, name="Musti", microchip="985112000000001")
    return maria, jari


@pytest.mark.parametrize(
    ("q", "found", "not_found"),
    [
        ("rosa", "Rosa", "Musti"),
        ("Virtanen", "Rosa", "Musti"),
        ("040 111", "Rosa", "Musti"),
        ("0401112233", "Rosa", "Musti"),
        ("maria@example", "Rosa", "Musti"),
        ("3456789", "Rosa", "Musti"),
        ("maria virtanen", "Rosa", "Musti"),
    ],
)
def test_search_finds_by_name_phone_email_or_microchip(vet_client, owners, q, found, not_found):
    html = vet_client.get(reverse("patients:search"), {"q": q}).content.decode()
    assert f">{found}</a>" in html
    assert f">{not_found}</a>" not in html


def test_search_as_you_type_returns_only_the_results(vet_client, owners):
    response = vet_client.get(reverse("patients:search"), {"q": "rosa"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and ">Rosa</a>" in html


def test_create_client_and_patient_then_edit(vet_client, department):
    response = vet_client.post(
        reverse("patients:client_create"),
        {"first_name": "Ella", "last_name": "Salo", "phone": "040 1", "email": ""},
    )
    client = Client.objects.get(last_name="Salo")
    assert response["Location"] == reverse("patients:client_detail", args=[client.pk])
    response = vet_client.post(
        reverse("patients:patient_create", args=[client.pk]),
        {"name": "Nuppu", "species": "FELINE", "sex": "FEMALE_INTACT", "birth_date": "2022-05-01"},
    )
    patient = Patient.objects.get(name="Nuppu")
    assert patient.client == client and patient.species == "FELINE"
    vet_client.post(
        reverse("patients:patient_edit", args=[patient.pk]),
        {"name": "Nuppu", "species": "FELINE", "sex": "FEMALE_SPAYED", "breed": "Ragdoll"},
    )
    patient.refresh_from_db()
    assert (patient.sex, patient.breed) == ("FEMALE_SPAYED", "Ragdoll")


def test_client_without_last_name_is_refused_with_a_message(vet_client, department):
    response = vet_client.post(reverse("patients:client_create"), {"first_name": "X"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Client.objects.exists()


def test_record_weight_and_start_consultation_in_current_department(
    vet_client, department, patient, vet
):
    vet_client.post(
        reverse("patients:weight_record", args=[patient.pk]), {"value": "28.15", "unit": "kg"}
    )
    assert str(patient.weights.first().value) == "28.15"
    response = vet_client.post(
        reverse("patients:consultation_start", args=[patient.pk]), {"reason": "Vomiting"}
    )
    consultation = Consultation.objects.get(patient=patient)
    assert consultation.department == department and consultation.vet == vet
    assert response["Location"] == reverse("labs:consultation_detail", args=[consultation.pk])
    html = vet_client.get(response["Location"]).content.decode()
    assert "28.15 kg" in html and "Vomiting" in html


def test_zero_weight_is_refused(vet_client, department, patient):
    response = vet_client.post(
        reverse("patients:weight_record", args=[patient.pk]),
        {"value": "0", "unit": "kg"},
        follow=True,
    )
    assert "The weight was not recorded" in response.content.decode()
    assert patient.weights.count() == 1


def test_nurse_can_edit_patients(department, patient):
    from pims.models import Membership
    from tests.ui.conftest import member, signed_in

    nurse = signed_in(member(department, Membership.ROLE_NURSE, username="nurse-a"))
    assert nurse.get(reverse("patients:patient_edit", args=[patient.pk])).status_code == 200
