"""Client, patient, weight and visit writes: each one a service with its audit event."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from patients.models import Consultation, WeightMeasurement
from patients.services import (
    client_create,
    client_update,
    consultation_start,
    patient_create,
    patient_update,
    weight_record,
)
from pims.models import AuditEvent, Membership
from tests.factories import (
    ClientFactory,
    DepartmentFactory,
    MembershipFactory,
    PatientFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def department():
    return DepartmentFactory()


@pytest.fixture
def vet(department):
    user = UserFactory()
    MembershipFactory(user=user, department=department, role=Membership.ROLE_VET)
    return user


def test_client_create_writes_the_client_and_its_audit_event(department, vet):
    client = client_create(
        last_name="Nieminen", phone="040 1", created_by=vet, department=department
    )
    event = AuditEvent.objects.get(action="client.created")
    assert (client.full_name, client.phone) == ("Nieminen", "040 1")
    assert (event.subject_id, event.actor_user, event.department) == (
        str(client.pk),
        vet,
        department,
    )


def test_client_edit_page_audits_only_the_fields_that_changed(department, vet):
    client = ClientFactory(first_name="Maria", last_name="Virtanen", phone="040 111")
    http = HttpClient()
    http.force_login(vet)
    data = {"first_name": "Maria", "last_name": "Virtanen", "phone": "050 222", "email": ""}
    response = http.post(reverse("patients:client_edit", args=[client.pk]), data)
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.phone == "050 222"
    assert AuditEvent.objects.get(action="client.changed").data == {"fields": ["phone", "email"]}


def test_client_update_refuses_a_field_it_does_not_know(vet):
    client = ClientFactory()
    with pytest.raises(TypeError):
        client_update(client=client, password="x", updated_by=vet)


def test_patient_create_and_update_keep_the_patient_on_the_audit_trail(department, vet):
    owner = ClientFactory()
    patient = patient_create(client=owner, name="Musti", species="FELINE", created_by=vet)
    patient_update(patient=patient, name="Musti", deceased=True, updated_by=vet)
    events = list(AuditEvent.objects.filter(patient_id=patient.pk).order_by("id"))
    assert [e.action for e in events] == ["patient.created", "patient.changed"]
    assert events[1].data == {"fields": ["deceased"]}
    patient.refresh_from_db()
    assert patient.deceased and patient.client == owner and patient.sex == "UNKNOWN"


def test_weight_record_stores_the_measurement_now_unless_told(department, vet):
    patient = PatientFactory()
    weight = weight_record(
        patient=patient, value=Decimal("4.2"), unit="kg", recorded_by=vet, department=department
    )
    assert WeightMeasurement.objects.get() == weight
    assert weight.recorded_by == vet and weight.measured_at is not None
    event = AuditEvent.objects.get(action="patient.weight_recorded")
    assert event.data == {"value": "4.2", "unit": "kg"}


@pytest.mark.parametrize("value,unit", [("0", "kg"), ("-1", "kg"), ("abc", "kg"), ("3", "st")])
def test_weight_record_refuses_a_weight_that_is_not_one(vet, value, unit):
    with pytest.raises(ValidationError):
        weight_record(patient=PatientFactory(), value=value, unit=unit, recorded_by=vet)
    assert not WeightMeasurement.objects.exists()
    assert not AuditEvent.objects.exists()


def test_consultation_start_opens_a_visit_in_the_department(department, vet):
    patient = PatientFactory()
    consultation = consultation_start(
        patient=patient, department=department, vet=vet, reason="Limping", started_by=vet
    )
    assert Consultation.objects.get() == consultation
    assert (consultation.status, consultation.department, consultation.reason) == (
        Consultation.STATUS_OPEN,
        department,
        "Limping",
    )
    assert AuditEvent.objects.get(action="consultation.started").patient_id == patient.pk
