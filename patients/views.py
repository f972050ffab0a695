"""Clients and patients (the practice's, seen from every department) and starting a visit."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from patients import selectors, services
from patients.forms import ClientForm, ConsultationStartForm, PatientForm, WeightForm
from patients.models import Client, Patient
from pims import access
from pims.permissions import EDIT_CLINICAL, VIEW_CLINICAL


def weight_text(weight) -> str:
    """27.40 kg as a vet writes it: 27.4 kg."""
    text = format(weight.value.normalize(), "f")
    return f"{text} {weight.unit}"


@access.department_required(VIEW_CLINICAL)
def search(request):
    q = request.GET.get("q", "").strip()
    clients, patients = selectors.search_clients_and_patients(q)
    context = {"q": q, "clients": clients, "patients": patients}
    if not q:
        context["recent_consultations"] = selectors.consultations_recent(
            department=request.department
        )
    template = "patients/_search_results.html" if request.htmx else "patients/search.html"
    return render(request, template, context)


@access.department_required(EDIT_CLINICAL)
def client_create(request):
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        client = services.client_create(
            **form.cleaned_data, created_by=request.user, department=request.department
        )
        messages.success(request, f"Client {client.full_name} created.")
        return redirect("patients:client_detail", client_id=client.pk)
    return render(request, "patients/client_form.html", {"form": form})


@access.department_required(EDIT_CLINICAL)
def client_edit(request, client_id: int):
    client = get_object_or_404(Client, pk=client_id)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        services.client_update(
            client=client,
            **form.cleaned_data,
            updated_by=request.user,
            department=request.department,
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
        patient = services.patient_create(
            client=client,
            **form.cleaned_data,
            created_by=request.user,
            department=request.department,
        )
        messages.success(request, f"Patient {patient.name} created.")
        return redirect("patients:patient_detail", patient_id=patient.pk)
    return render(request, "patients/patient_form.html", {"form": form, "client": client})


@access.department_required(EDIT_CLINICAL)
def patient_edit(request, patient_id: int):
    patient = get_object_or_404(Patient.objects.select_related("client"), pk=patient_id)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        services.patient_update(
            patient=patient,
            **form.cleaned_data,
            updated_by=request.user,
            department=request.department,
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
    consultations = selectors.consultations_of_patient(
        patient=patient, department_ids=access.member_department_ids(request)
    )
    weights = selectors.weights_recent(patient=patient)
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
    error = ""
    if form.is_valid():
        try:
            weight = services.weight_record(
                patient=patient,
                **form.cleaned_data,
                recorded_by=request.user,
                department=request.department,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Weight {weight.value} {weight.unit} recorded.")
    else:
        error = "; ".join(e for errs in form.errors.values() for e in errs)
    if error:
        messages.error(request, f"The weight was not recorded: {error}")
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
    consultation = services.consultation_start(
        patient=patient,
        department=request.department,
        vet=request.user,
        reason=form.cleaned_data["reason"],
        started_by=request.user,
    )
    return redirect("labs:consultation_detail", consultation_id=consultation.pk)
