"""Settings > Integrations > IDEXX VetLab Station: the department admin's page for the plug-in.

Enable the connection, set the password (typed twice or generated and shown once), copy the
two URLs and the Unit ID into the plug-in, and see whether it is talking to us.
"""

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone

from integrations.ivls import services
from integrations.ivls.models import (
    ExchangeLogEntry,
    InboundResultFile,
    IVLSConnection,
    WorkRequest,
)
from integrations.ivls.passwords import MIN_LENGTH, password_generate
from labs.models import LabRun
from pims import access
from pims.models import Department
from pims.permissions import CHANGE_SETTINGS, WORK_REVIEW_QUEUE

HEARD_RECENTLY = dt.timedelta(minutes=2)
WORK_REQUEST_PATH = "/api/ivls/v1/work-requests/"
RESULTS_PATH = "/api/ivls/v1/results/"


class ConnectionForm(forms.Form):
    enabled = forms.BooleanField(label="Connection enabled", required=False)


class PasswordForm(forms.Form):
    password1 = forms.CharField(
        label="New password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {MIN_LENGTH} characters.",
    )
    password2 = forms.CharField(
        label="New password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    apply_to_shared = forms.BooleanField(
        label="Change it for every department sharing the current password", required=False
    )

    def __init__(self, *args, generate: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.generate = generate

    def clean(self):
        data = super().clean()
        if self.generate:
            data["password"] = password_generate()
            return data
        first, second = data.get("password1", ""), data.get("password2", "")
        if not first:
            raise forms.ValidationError("Type the new password twice, or generate one.")
        if first != second:
            raise forms.ValidationError("The two passwords differ.")
        if len(first) < MIN_LENGTH:
            raise forms.ValidationError(f"The password needs at least {MIN_LENGTH} characters.")
        data["password"] = first
        return data


def _sharing_departments(connection: IVLSConnection | None) -> list[Department]:
    """Other departments whose password is this one's: one IVLS serves them all."""
    if connection is None or not connection.password_digest:
        return []
    return list(
        Department.objects.filter(ivls_connection__password_digest=connection.password_digest)
        .exclude(pk=connection.department_id)
        .order_by("id")
    )


def _health(connection: IVLSConnection | None) -> dict:
    heard = connection.last_heard_at if connection else None
    if heard and timezone.now() - heard <= HEARD_RECENTLY:
        return {"ok": True, "text": "Connected", "heard": heard}
    if heard:
        return {"ok": False, "text": "Not heard from since", "heard": heard}
    return {"ok": False, "text": "Never heard from", "heard": None}


def _page_context(request, **extra) -> dict:
    department = request.department
    connection = IVLSConnection.objects.filter(department=department).first()
    sharing = _sharing_departments(connection)
    pending = WorkRequest.objects.filter(department=department, delivered_at__isnull=True)
    base = request.build_absolute_uri("/").rstrip("/")
    unit_ids = ", ".join(str(pk) for pk in sorted([department.pk, *(d.pk for d in sharing)]))
    return {
        "department": department,
        "connection": connection,
        "health": _health(connection),
        "sharing": sharing,
        "sharing_not_admin": [d for d in sharing if not access.can(request, CHANGE_SETTINGS, d)],
        "unit_ids": unit_ids,
        "work_request_url": base + WORK_REQUEST_PATH,
        "results_url": base + RESULTS_PATH,
        "pending_count": pending.count(),
        "pending": list(pending.select_related("referral").order_by("id")[:20]),
        "log": list(
            ExchangeLogEntry.objects.filter(department=department).order_by("-at", "-id")[:50]
        ),
        "review_count": LabRun.objects.filter(
            departments=department,
            review_state__in=(LabRun.STATE_UNMATCHED, LabRun.STATE_NEEDS_REVIEW),
        ).count(),
        "failed_count": _failed_files(department).count(),
        "connection_form": ConnectionForm(
            initial={"enabled": bool(connection and connection.enabled)}
        ),
        "password_form": PasswordForm(),
        "min_length": MIN_LENGTH,
        **extra,
    }


def _failed_files(department: Department):
    return InboundResultFile.objects.filter(
        status=InboundResultFile.STATUS_FAILED, inboundresultfiledepartment__department=department
    )


def _configure_password(request, password: str, apply_to_shared: bool) -> list[Department]:
    """Set the password here (and, when asked, in every department sharing the old one).

    One transaction: the plug-in sends one password for all its units, so changing it in
    some of them only would lock it out of all of them.
    """
    department = request.department
    connection = IVLSConnection.objects.filter(department=department).first()
    targets = [department]
    if apply_to_shared:
        sharing = _sharing_departments(connection)
        refused = [d.name for d in sharing if not access.can(request, CHANGE_SETTINGS, d)]
        if refused:
            raise ValidationError(
                "You are not an admin of " + ", ".join(refused) + ": ask one of their admins."
            )
        targets += sharing
    enabled_by_dept = dict(
        IVLSConnection.objects.filter(department__in=targets).values_list(
            "department_id", "enabled"
        )
    )
    with transaction.atomic():
        for target in targets:
            services.connection_configure(
                department=target,
                enabled=enabled_by_dept.get(target.pk, False),
                password=password,
                changed_by=request.user,
            )
    return targets


@access.department_required(CHANGE_SETTINGS)
def ivls_settings(request):
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "connection":
            form = ConnectionForm(request.POST)
            form.is_valid()
            enabled = bool(form.cleaned_data.get("enabled"))
            try:
                services.connection_configure(
                    department=request.department, enabled=enabled, changed_by=request.user
                )
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(
                    request, "The connection is enabled." if enabled else "The connection is off."
                )
            return redirect("ivls_settings")
        if action in ("password", "generate"):
            form = PasswordForm(request.POST, generate=action == "generate")
            if not form.is_valid():
                return render(
                    request,
                    "integrations/ivls_settings.html",
                    _page_context(request, password_form=form),
                    status=200,
                )
            password = form.cleaned_data["password"]
            try:
                targets = _configure_password(
                    request, password, bool(form.cleaned_data.get("apply_to_shared"))
                )
            except ValidationError as error:
                form.add_error(None, " ".join(error.messages))
                return render(
                    request,
                    "integrations/ivls_settings.html",
                    _page_context(request, password_form=form),
                )
            names = ", ".join(d.name for d in targets)
            if action == "generate":
                # Shown in this one response and never again: only its digest is kept.
                response = render(
                    request,
                    "integrations/ivls_settings.html",
                    _page_context(request, generated_password=password, changed_for=names),
                )
                response["Cache-Control"] = "no-store"
                return response
            messages.success(request, f"The IVLS password was changed for {names}.")
            return redirect("ivls_settings")
    return render(request, "integrations/ivls_settings.html", _page_context(request))


@access.department_required(WORK_REVIEW_QUEUE)
def ivls_failed_files(request):
    """Result files that failed processing, for the review queue (loaded into it by htmx)."""
    files = list(_failed_files(request.department).order_by("-received_at", "-id")[:50])
    return render(request, "integrations/_failed_files.html", {"files": files})


urlpatterns = [
    path("settings/integrations/ivls/", ivls_settings, name="ivls_settings"),
    path("lab/review/failed-files/", ivls_failed_files, name="ivls_failed_files"),
]
