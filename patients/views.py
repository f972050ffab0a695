"""Clients and patients (the practice's, seen from every department) and starting a visit."""

import re

from django.contrib import messages
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Replace
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from patients.forms import ClientForm, ConsultationStartForm, PatientForm, WeightForm
from patients.models import Client, Consultation, Patient
from pims import access
from pims.permissions import EDIT_CLINICAL, VIEW_CLINICAL
from pims.services import audit_event_write

SEARCH_LIMIT = 50


def weight_text(weight) -> str:
    """27.40 kg as a vet writes it: 27.4 kg."""
    text = format(weight.value.normalize(), "f")
    return f"{text} {weight.unit}"


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


@access.department_required(VIEW_CLINICAL)
def search(request):
    q = request.GET.get("q", "").strip()
    clients, patients = search_clients_and_patients(q)
    context = {"q": q, "clients": clients, "patients": patients}
    if not q:
        context["recent_consultations"] = list(
            Consultation.objects.filter(department=request.department)
            .select_related("patient__client", "vet")
            .order_by("-started_at", "-id")[:20]
        )
    template = "patients/_search_results.html" if request.htmx else "patients/search.html"
    return render(request, template, context)


@access.department_required(EDIT_CLINICAL)
def client_create(request):
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            client = form.save()
            audit_event_write(
                action="client.created",
                department=request.department,
                actor_user=request.user,
                subject=client,
            )
        messages.success(request, f"Client {client.full_name} created.")
        return redirect("patients:client_detail", client_id=client.pk)
    return render(request, "patients/client_form.html", {"form": form})


@access.department_required(EDIT_CLINICAL)
def client_edit(request, client_id: int):
    client = get_object_or_404(Client, pk=client_id)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            audit_event_write(
                action="client.changed",
                department=request.department,
                actor_user=request.user,
                subject=client,
                data={"fields": form.changed_data},
            )
        messages.success(request, "Client saved.")
        return redirect("patients:client_detail", client_id=client.pk)
    return render(request, "patients/client_form.html", {"form": form, "client": client})


@access.department_required(VIEW_CLINICAL)
def client_detail(request, client_id: int):
    client = get_object_or_404(Client, pk=client_id)
    patients = list(client.patients.order_by("deceased", "name", "id"))
    return render(request, "patients/client_detail.html", {"client": client, "patients": patients})


@access.department_required(EDIT_CLINICAL)
def patient_create(request, client_id: int):
    client = get_object_or_404(Client, pk=client_id)
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            patient = form.save(commit=False)
            patient.client = client
            patient.save()
            audit_event_write(
                action="patient.created",
                department=request.department,
                actor_user=request.user,
                subject=patient,
                patient_id=patient.pk,
            )
        messages.success(request, f"Patient {patient.name} created.")
        return redirect("patients:patient_detail", patient_id=patient.pk)
    return render(request, "patients/patient_form.html", {"form": form, "client": client})


@access.department_required(EDIT_CLINICAL)
def patient_edit(request, patient_id: int):
    patient = get_object_or_404(Patient.objects.select_related("client"), pk=patient_id)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            audit_event_write(
                action="patient.changed",
                department=request.department,
                actor_user=request.user,
                subject=patient,
                patient_id=patient.pk,
                data={"fields": form.changed_data},
            )
        messages.success(request, "Patient saved.")
        return redirect("patients:patient_detail", patient_id=patient.pk)
    return render(
        request,
        "patients/patient_form.html",
        {"form": form, "client": patient.client, "patient": patient},
    )


@access.department_required(VIEW_CLINICAL)
def patient_detail(request, patient_id: int):
    patient = get_object_or_404(Patient.objects.select_related("client"), pk=patient_id)
    # Visits are department data: only those of the user's own departments are listed.
    consultations = list(
        patient.consultations.filter(department_id__in=access.member_department_ids(request))
        .select_related("department", "vet")
        .order_by("-started_at", "-id")[:50]
    )
    weights = list(patient.weights.order_by("-measured_at", "-id")[:10])
    for weight in weights:
        weight.text = weight_text(weight)
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "client": patient.client,
            "consultations": consultations,
            "weights": weights,
            "latest_weight": weights[0] if weights else None,
            "age": patient.age_on(timezone.localdate()),
            "weight_form": WeightForm(initial={"unit": request.department.weight_unit}),
            "consultation_form": ConsultationStartForm(),
        },
    )


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@access.department_required(EDIT_CLINICAL)
def weight_record(request, patient_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = get_object_or_404(Patient, pk=patient_id)
    form = WeightForm(request.POST)
    if form.is_valid():
        with transaction.atomic():
            weight = form.save(commit=False)
            weight.patient = patient
            weight.recorded_by = request.user
            weight.measured_at = timezone.now()
            weight.save()
            audit_event_write(
                action="patient.weight_recorded",
                department=request.department,
                actor_user=request.user,
                subject=weight,
                patient_id=patient.pk,
                data={"value": str(weight.value), "unit": weight.unit},
            )
        messages.success(request, f"Weight {weight.value} {weight.unit} recorded.")
    else:
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, f"The weight was not recorded: {errors}")
    return redirect(_safe_next(request, reverse("patients:patient_detail", args=[patient.pk])))


@access.department_required(EDIT_CLINICAL)
def consultation_start(request, patient_id: int):
    """A new visit in the department the user works in now."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = get_object_or_404(Patient, pk=patient_id)
    form = ConsultationStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The consultation was not started.")
        return redirect("patients:patient_detail", patient_id=patient.pk)
    with transaction.atomic():
        consultation = form.save(commit=False)
        consultation.patient = patient
        consultation.department = request.department
        consultation.vet = request.user
        consultation.save()
        audit_event_write(
            action="consultation.started",
            department=request.department,
            actor_user=request.user,
            subject=consultation,
            patient_id=patient.pk,
        )
    return redirect("labs:consultation_detail", consultation_id=consultation.pk)
