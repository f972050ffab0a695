from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from pims import access
from pims.permissions import CHANGE_SETTINGS, EDIT_ITEM_LIST


def home(request):
    if request.user.is_authenticated and access.current_membership(request) is not None:
        # The day starts with finding a patient; the search page lists today's visits.
        return redirect("patients:search")
    return render(request, "pims/home.html")


def healthz(request):
    """Liveness for the reverse proxy and docker: the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def department_switch(request):
    """Work in another of the user's departments (the top bar's switcher)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        department_id = int(request.POST.get("department", ""))
    except ValueError:
        department_id = 0
    access.department_switch(request, department_id)
    target = request.POST.get("next", "")
    # Pages of one department's objects would 404 in another: go to a page that exists in
    # every department unless the target is a practice-wide page.
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("home")
    return redirect(target)


def _url_or_empty(name: str, **kwargs) -> str:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return ""


@access.department_required()
def settings_index(request):
    return render(
        request,
        "pims/settings.html",
        {
            "can_change_settings": access.can(request, CHANGE_SETTINGS),
            "can_edit_item_list": access.can(request, EDIT_ITEM_LIST),
            "ivls_settings_url": _url_or_empty("ivls_settings"),
        },
    )
