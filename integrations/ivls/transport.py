"""The IVLS order transport: labs calls it; it writes work request rows for the plug-in."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

from integrations.ivls.interlink import WorkRequestData, render_work_request
from integrations.ivls.models import WorkRequest
from labs.models import Referral, ReferralLine
from patients.selectors import latest_weight, weight_in


def _work_request_data(
    work_request: WorkRequest, referral: Referral, codes: list[str]
) -> WorkRequestData:
    department = referral.department
    consultation = referral.consultation
    patient = consultation.patient
    client = patient.client
    vet = consultation.vet
    measurement = latest_weight(patient)
    weight = None
    if measurement is not None:
        weight = weight_in(measurement, department.weight_unit).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )
    return WorkRequestData(
        message_id=work_request.pk,
        sent_at_local=timezone.localtime(work_request.created_at, department.zone).replace(
            tzinfo=None
        ),
        action=work_request.action,
        sender_id=settings.PIMS_INSTANCE_ID,
        requisition_number=str(referral.number),
        client_id=str(client.pk),
        client_first_name=client.first_name,
        client_last_name=client.last_name,
        patient_id=str(patient.pk),
        patient_name=patient.name,
        species=patient.species,
        gender=patient.sex,
        breed=patient.breed,
        birth_date=patient.birth_date,
        weight=weight,
        weight_unit=department.weight_unit,
        doctor_first_name=vet.first_name if vet else "",
        doctor_last_name=vet.last_name if vet else "",
        service_codes=tuple(codes),
    )


def _write(referral: Referral, action: str, codes: list[str]) -> WorkRequest:
    # The message id inside the XML is the row's id, so the row exists before the XML.
    # created_at is read here, through timezone.now(), rather than by the field default
    # (bound when the model was loaded), so the clock can be fixed for message_dt.
    work_request = WorkRequest.objects.create(
        department=referral.department,
        referral=referral,
        action=action,
        xml="",
        created_at=timezone.now(),
    )
    work_request.xml = render_work_request(_work_request_data(work_request, referral, codes))
    work_request.save(update_fields=["xml"])
    return work_request


class IVLSTransport:
    def referral_queued(self, *, referral: Referral, lines: list[ReferralLine]) -> None:
        codes = [line.item.code for line in lines if line.item.is_ivls_analysis]
        _write(referral, WorkRequest.ACTION_NEW, codes)

    def referral_cancelled(self, *, referral: Referral) -> None:
        codes = list(
            referral.lines.filter(item__is_ivls_analysis=True).values_list("item__code", flat=True)
        )
        _write(referral, WorkRequest.ACTION_CANCEL, codes)
