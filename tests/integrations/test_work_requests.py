"""The IVLS order transport (work request rows and their XML) and the connection settings."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.ivls.interlink import parse_work_request
from integrations.ivls.models import IVLSConnection, WorkRequest
from integrations.ivls.passwords import password_matches
from integrations.ivls.services import connection_configure
from labs.services import referral_create
from pims.models import AuditEvent
from tests.factories import (
    ClientFactory,
    ConsultationFactory,
    DepartmentFactory,
    PatientFactory,
    UserFactory,
    WeightFactory,
    ivls_item,
    lab_item,
)

PASSWORD = "correct-horse-battery"


def order(department, patient=None, *, codes=("SDMA",), vet=None, at=None):
    """Order IVLS analyses for the patient in the department; the New work request."""
    consultation = ConsultationFactory(
        department=department,
        patient=patient or PatientFactory(),
        **({"vet": vet} if vet is not None else {}),
    )
    items = [ivls_item(department, code) for code in codes]
    if at is None:
        referral = referral_create(consultation=consultation, items=items)
    else:
        with mock.patch("django.utils.timezone.now", return_value=at):
            referral = referral_create(consultation=consultation, items=items)
    return WorkRequest.objects.get(referral=referral, action="New")


# --------------------------------------------------------------------------------------
# The work request file
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "wall_time", "message_dt"),
    [
        # Winter, UTC-5.
        (
            dt.datetime(2026, 11, 22, 19, 3, 11, 420000, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 22, 14, 3, 11),  # noqa: DTZ001 - InterLink's wall time
            "11/22/2026 02:03:11 PM",
        ),
        # Summer, UTC-4, and already the previous day in New York.
        (
            dt.datetime(2026, 7, 4, 3, 15, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 7, 3, 23, 15, 0),  # noqa: DTZ001 - InterLink's wall time
            "07/03/2026 11:15:00 PM",
        ),
    ],
    ids=["winter", "summer"],
)
def test_work_request_round_trips_names_with_markup_and_non_latin_letters(
    db, settings, at, wall_time, message_dt
):
    settings.PIMS_INSTANCE_ID = "pims-järvenpää-01"
    department = DepartmentFactory(time_zone="America/New_York", weight_unit="kg")
    client = ClientFactory(first_name="Åsa & <Börje>", last_name='O\'Brien "Öhman" 王')
    patient = PatientFactory(
        client=client,
        name="Müsli & 'Pöllö' <3 \"ä\"",
        species="FELINE",
        sex="MALE_NEUTERED",
        breed="Suomenlapinkoira 柴犬 كلب",
        birth_date=dt.date(2019, 3, 14),
    )
    WeightFactory(patient=patient, value=Decimal("4.35"), unit="kg")
    vet = UserFactory(first_name='Väinö "Doc" & Co', last_name="<Lähde> 李 محمد")

    request = order(department, patient, codes=("CHEM17", "SDMA", "CBC"), vet=vet, at=at)

    assert request.created_at == at
    assert message_dt in request.xml
    data = parse_work_request(request.xml)
    referral = request.referral
    assert data.message_id == request.pk
    assert data.action == "New"
    assert data.sender_id == "pims-järvenpää-01"
    assert data.sent_at_local == wall_time
    assert data.requisition_number == str(referral.number)
    assert data.client_id == str(client.pk)
    assert data.client_first_name == "Åsa & <Börje>"
    assert data.client_last_name == 'O\'Brien "Öhman" 王'
    assert data.patient_id == str(patient.pk)
    assert data.patient_name == "Müsli & 'Pöllö' <3 \"ä\""
    assert data.species == "FELINE"
    assert data.gender == "MALE_NEUTERED"
    assert data.breed == "Suomenlapinkoira 柴犬 كلب"
    assert data.birth_date == dt.date(2019, 3, 14)
    assert (data.weight, data.weight_unit) == (Decimal("4.4"), "kg")
    assert data.doctor_first_name == 'Väinö "Doc" & Co'
    assert data.doctor_last_name == "<Lähde> 李 محمد"
    assert data.service_codes == ("CHEM17", "SDMA", "CBC")


def test_work_request_is_written_for_the_referral_department_undelivered(db):
    department = DepartmentFactory()

    request = order(department)

    assert request.department == department
    assert request.delivered_at is None
    assert request.file_name == f"WR-{request.pk}.xml"
    assert request.xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_only_ivls_codes_are_sent(db):
    department = DepartmentFactory()
    consultation = ConsultationFactory(department=department)

    referral = referral_create(
        consultation=consultation,
        items=[lab_item(department, "CYTO"), ivls_item(department, "SDMA")],
    )

    (request,) = WorkRequest.objects.filter(referral=referral)
    assert parse_work_request(request.xml).service_codes == ("SDMA",)


def test_latest_measured_weight_wins_even_when_recorded_first(db):
    department = DepartmentFactory(weight_unit="kg")
    patient = PatientFactory()
    now = timezone.now()
    # Recorded first (lower id) but measured later.
    WeightFactory(patient=patient, value=Decimal("27.40"), measured_at=now - dt.timedelta(days=1))
    WeightFactory(patient=patient, value=Decimal("31.00"), measured_at=now - dt.timedelta(days=30))

    data = parse_work_request(order(department, patient).xml)

    assert (data.weight, data.weight_unit) == (Decimal("27.4"), "kg")


def test_kilograms_are_sent_in_pounds_with_one_decimal_to_a_pound_department(db):
    department = DepartmentFactory(weight_unit="lb")
    patient = PatientFactory()
    WeightFactory(patient=patient, value=Decimal("27.40"), unit="kg")

    request = order(department, patient)

    assert '<patient_weight patient_weight_uom="lbs"><weight>60.4</weight>' in request.xml
    data = parse_work_request(request.xml)
    assert (data.weight, data.weight_unit) == (Decimal("60.4"), "lb")


def test_pounds_are_sent_in_kilograms_to_a_kilogram_department(db):
    department = DepartmentFactory(weight_unit="kg")
    patient = PatientFactory()
    WeightFactory(patient=patient, value=Decimal("60.40"), unit="lb")

    request = order(department, patient)

    assert '<patient_weight patient_weight_uom="kgs"><weight>27.4</weight>' in request.xml


def test_patient_without_weight_is_sent_as_zero(db):
    department = DepartmentFactory(weight_unit="kg")

    request = order(department, PatientFactory())

    assert '<patient_weight patient_weight_uom="kgs"><weight>0</weight>' in request.xml
    assert parse_work_request(request.xml).weight is None


def test_patient_without_birth_date_sends_an_empty_date(db):
    department = DepartmentFactory()

    request = order(department, PatientFactory(birth_date=None))

    assert "<patient_birth_dt></patient_birth_dt>" in request.xml
    assert parse_work_request(request.xml).birth_date is None


# --------------------------------------------------------------------------------------
# Connection settings
# --------------------------------------------------------------------------------------


def test_connection_is_enabled_with_a_password_stored_only_as_a_digest(db):
    department = DepartmentFactory()
    admin = UserFactory()

    connection = connection_configure(
        department=department, enabled=True, password=PASSWORD, changed_by=admin
    )

    connection.refresh_from_db()
    assert connection.enabled is True
    assert PASSWORD not in connection.password_digest
    assert password_matches(PASSWORD, connection.password_digest)
    assert not password_matches("correct-horse-batterY", connection.password_digest)
    event = AuditEvent.objects.get(action="ivls.connection_configured")
    assert event.actor_user == admin
    assert PASSWORD not in str(event.data)


def test_password_shorter_than_twelve_characters_is_refused(db):
    department = DepartmentFactory()

    with pytest.raises(ValidationError, match="at least 12 characters"):
        connection_configure(department=department, enabled=True, password="elevenchars")

    assert not IVLSConnection.objects.filter(department=department).exists()
    assert not AuditEvent.objects.filter(action="ivls.connection_configured").exists()


def test_twelve_character_password_is_accepted(db):
    connection = connection_configure(
        department=DepartmentFactory(), enabled=True, password="twelve-chars"
    )

    assert connection.enabled is True


def test_enabling_without_a_password_is_refused(db):
    with pytest.raises(ValidationError, match="Set a password"):
        connection_configure(department=DepartmentFactory(), enabled=True)

    assert not IVLSConnection.objects.exists()


def test_departments_sharing_a_password_must_share_a_time_zone(db):
    helsinki = DepartmentFactory(name="Helsinki", time_zone="Europe/Helsinki")
    espoo = DepartmentFactory(name="Espoo", time_zone="Europe/Helsinki")
    new_york = DepartmentFactory(name="New York", time_zone="America/New_York")
    connection_configure(department=helsinki, enabled=True, password=PASSWORD)

    connection_configure(department=espoo, enabled=True, password=PASSWORD)
    with pytest.raises(ValidationError, match="must share a time zone") as refused:
        connection_configure(department=new_york, enabled=True, password=PASSWORD)

    assert "America/New_York" in str(refused.value)
    assert "Europe/Helsinki" in str(refused.value)
    assert not IVLSConnection.objects.filter(department=new_york).exists()
    # Another password is fine for the other time zone.
    connection_configure(department=new_york, enabled=True, password=PASSWORD + "-ny")
    assert IVLSConnection.objects.filter(enabled=True).count() == 3


def test_disabling_keeps_the_password(db):
    department = DepartmentFactory()
    connection_configure(department=department, enabled=True, password=PASSWORD)

    connection = connection_configure(department=department, enabled=False)

    assert connection.enabled is False
    assert password_matches(PASSWORD, IVLSConnection.objects.get().password_digest)


def run_command(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("ivls_connection", *args, stdout=out)
    return out.getvalue()


def test_command_enables_and_disables_a_unit(db):
    department = DepartmentFactory(name="Main clinic")
    unit = str(department.pk)

    enabled = run_command(unit, "--enable", "--password", PASSWORD)
    disabled = run_command(unit, "--disable")

    assert (
        enabled.strip()
        == f"IVLS connection of unit {unit} (Main clinic) enabled; password changed."
    )
    assert disabled.strip() == f"IVLS connection of unit {unit} (Main clinic) disabled."
    connection = IVLSConnection.objects.get(department=department)
    assert connection.enabled is False
    assert password_matches(PASSWORD, connection.password_digest)


def test_command_refuses_an_unknown_unit(db):
    DepartmentFactory()

    with pytest.raises(CommandError, match="no department with Unit ID 987654"):
        run_command("987654", "--enable", "--password", PASSWORD)

    assert not IVLSConnection.objects.exists()


def test_command_reports_a_short_password(db):
    department = DepartmentFactory()

    with pytest.raises(CommandError, match="at least 12 characters"):
        run_command(str(department.pk), "--enable", "--password", "short")

    assert not IVLSConnection.objects.exists()


def test_command_refuses_enabling_without_a_password(db):
    department = DepartmentFactory()

    with pytest.raises(CommandError, match="Set a password"):
        run_command(str(department.pk), "--enable")


def test_command_refuses_enable_and_disable_together(db):
    department = DepartmentFactory()

    with pytest.raises(CommandError, match="not allowed with argument"):
        run_command(str(department.pk), "--enable", "--disable")
