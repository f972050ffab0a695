"""Writes to clients, patients, their weights and visits. Keyword-only, one transaction each,
each writing its audit event. ``department`` is where the person did it (clients and patients
belong to the practice, but the audit trail records where a change came from)."""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from patients.models import Client, Consultation, Patient, WeightMeasurement
from pims.models import Department
from pims.services import audit_event_write, fields_apply, row_locked

CLIENT_FIELDS = ("first_name", "last_name", "phone", "email", "address", "postal_code", "city")
PATIENT_FIELDS = ("name", "species", "breed", "sex", "birth_date", "microchip", "deceased")


@transaction.atomic
def client_create(
    *,
    last_name: str,
    first_name: str = "",
    phone: str = "",
    email: str = "",
    address: str = "",
    postal_code: str = "",
    city: str = "",
    created_by,
    department: Department | None = None,
) -> Client:
    client = Client.objects.create(
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        email=email,
        address=address,
        postal_code=postal_code,
        city=city,
    )
    audit_event_write(
        action="client.created", department=department, actor_user=created_by, subject=client
    )
    return client


@transaction.atomic
def client_update(
    *, client: Client, updated_by, department: Department | None = None, **changes
) -> Client:
    """Change any of CLIENT_FIELDS; the audit event names the fields that changed."""
    client = row_locked(client)
    changed = fields_apply(client, CLIENT_FIELDS, changes)
    client.save()
    audit_event_write(
        action="client.changed",
        department=department,
        actor_user=updated_by,
        subject=client,
        data={"fields": changed},
    )
    return client


@transaction.atomic
def patient_create(
    *,
    client: Client,
    name: str,
    species: str = "CANINE",
    breed: str = "",
    sex: str = "UNKNOWN",
    birth_date: dt.date | None = None,
    microchip: str = "",
    deceased: bool = False,
    created_by,
    department: Department | None = None,
) -> Patient:
    patient = Patient.objects.create(
        client=client,
        name=name,
        species=species,
        breed=breed,
        sex=sex,
        birth_date=birth_date,
        microchip=microchip,
        deceased=deceased,
    )
    audit_event_write(
        action="patient.created",
        department=department,
        actor_user=created_by,
        subject=patient,
        patient_id=patient.pk,
    )
    return patient


@transaction.atomic
def patient_update(
    *, patient: Patient, updated_by, department: Department | None = None, **changes
) -> Patient:
    """Change any of PATIENT_FIELDS; the audit event names the fields that changed."""
    patient = row_locked(patient)
    changed = fields_apply(patient, PATIENT_FIELDS, changes)
    patient.save()
    audit_event_write(
        action="patient.changed",
        department=department,
        actor_user=updated_by,
        subject=patient,
        patient_id=patient.pk,
        data={"fields": changed},
    )
    return patient


@transaction.atomic
def weight_record(
    *,
    patient: Patient,
    value: Decimal,
    unit: str,
    measured_at: dt.datetime | None = None,
    recorded_by,
    department: Department | None = None,
) -> WeightMeasurement:
    """One weight measurement, taken now unless ``measured_at`` says when."""
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(f"{value!r} is not a weight.") from None
    if not number.is_finite() or number <= 0:
        raise ValidationError("Enter a weight above zero.")
    if unit not in dict(WeightMeasurement.UNITS):
        raise ValidationError(f"Unknown weight unit {unit!r}.")
    weight = WeightMeasurement.objects.create(
        patient=patient,
        value=number,
        unit=unit,
        measured_at=measured_at or timezone.now(),
        recorded_by=recorded_by,
    )
    audit_event_write(
        action="patient.weight_recorded",
        department=department,
        actor_user=recorded_by,
        subject=weight,
        patient_id=patient.pk,
        data={"value": str(number), "unit": unit},
    )
    return weight


@transaction.atomic
def consultation_start(
    *, patient: Patient, department: Department, vet, reason: str = "", started_by
) -> Consultation:
    """A new open visit of ``patient`` in ``department``."""
    consultation = Consultation.objects.create(
        patient=patient, department=department, vet=vet, reason=reason
    )
    audit_event_write(
        action="consultation.started",
        department=department,
        actor_user=started_by,
        subject=consultation,
        patient_id=patient.pk,
    )
    return consultation
