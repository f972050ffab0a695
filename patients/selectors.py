import re
from decimal import Decimal

from django.db.models import F, Q, Value
from django.db.models.functions import Replace

from patients.models import Client, Consultation, Patient, WeightMeasurement
from pims.models import Department

KG_PER_LB = Decimal("0.45359237")
SEARCH_LIMIT = 50


def latest_weight(patient: Patient) -> WeightMeasurement | None:
    return patient.weights.order_by("-measured_at", "-id").first()


def weight_in(measurement: WeightMeasurement, unit: str) -> Decimal:
    """A weight converted to 'kg' or 'lb'."""
    if measurement.unit == unit:
        return measurement.value
    if unit == "kg":
        return measurement.value * KG_PER_LB
    return measurement.value / KG_PER_LB


# --- Search ----------------------------------------------------------------------------------


def _terms(q: str) -> list[str]:
    return [term for term in q.split() if term][:5]


def _term_filter(term: str, prefix: str = "") -> Q:
    """One search word matches a client's name or e-mail."""
    return (
        Q(**{f"{prefix}first_name__icontains": term})
        | Q(**{f"{prefix}last_name__icontains": term})
        | Q(**{f"{prefix}email__icontains": term})
    )


def _with_compact_phone(queryset, field: str):
    compact = Replace(Replace(F(field), Value(" "), Value("")), Value("-"), Value(""))
    return queryset.annotate(phone_compact=compact)


def _phone_variants(q: str) -> list[str]:
    """A query that looks like a phone number, without spaces; a leading trunk 0 also
    matches the international form (040 111 2233 finds +358 40 111 2233)."""
    compact = re.sub(r"[\s\-().]", "", q)
    if not re.fullmatch(r"\+?\d{4,}", compact):
        return []
    variants = [compact]
    if compact.startswith("0") and not compact.startswith("00"):
        variants.append(compact[1:])
    return variants


def search_clients_and_patients(q: str) -> tuple[list[Client], list[Patient]]:
    """Clients and patients matching every word of ``q`` (names, e-mail, microchip), or the
    phone number ``q`` looks like; at most SEARCH_LIMIT of each."""
    terms = _terms(q)
    if not terms:
        return [], []
    clients = _with_compact_phone(Client.objects.all(), "phone")
    patients = _with_compact_phone(Patient.objects.select_related("client"), "client__phone")
    phones = _phone_variants(q)
    if phones:
        by_phone = Q()
        for variant in phones:
            by_phone |= Q(phone_compact__contains=variant)
        clients = clients.filter(by_phone)
        patients = patients.filter(by_phone | Q(microchip__contains=phones[0]))
    else:
        for term in terms:
            clients = clients.filter(_term_filter(term))
            patients = patients.filter(
                _term_filter(term, "client__")
                | Q(name__icontains=term)
                | Q(microchip__icontains=term)
            )
    return list(clients[:SEARCH_LIMIT]), list(patients.order_by("name", "id")[:SEARCH_LIMIT])


# --- Visits and weights ----------------------------------------------------------------------


def consultations_recent(*, department: Department, limit: int = 20) -> list[Consultation]:
    """The department's latest visits, newest first."""
    return list(
        Consultation.objects.filter(department=department)
        .select_related("patient__client", "vet")
        .order_by("-started_at", "-id")[:limit]
    )


def consultations_of_patient(
    *, patient: Patient, department_ids: list[int], limit: int = 50
) -> list[Consultation]:
    """A patient's visits in the given departments (visits are department data), newest first."""
    return list(
        patient.consultations.filter(department_id__in=department_ids)
        .select_related("department", "vet")
        .order_by("-started_at", "-id")[:limit]
    )


def weights_recent(*, patient: Patient, limit: int = 10) -> list[WeightMeasurement]:
    return list(patient.weights.order_by("-measured_at", "-id")[:limit])
