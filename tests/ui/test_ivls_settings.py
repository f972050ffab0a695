import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.ivls.models import ExchangeLogEntry, IVLSConnection, WorkRequest
from integrations.ivls.passwords import password_matches
from integrations.ivls.services import connection_configure
from labs.services import referral_create
from pims.models import Membership
from tests.factories import DepartmentFactory, MembershipFactory
from tests.ui.conftest import signed_in

URL = "/settings/integrations/ivls/"
OLD = "old-shared-password-1"


def page(http, **kw) -> str:
    response = http.get(URL, **kw)
    assert response.status_code == 200
    return response.content.decode()


def test_urls_are_absolute_and_built_from_the_request(admin_client_, department, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "pims.clinic.example"]
    html = page(admin_client_, HTTP_HOST="pims.clinic.example:8443", secure=True)
    assert 'value="https://pims.clinic.example:8443/api/ivls/v1/work-requests/"' in html
    assert 'value="https://pims.clinic.example:8443/api/ivls/v1/results/"' in html
    assert f'value="{department.pk}"' in html  # the Unit ID
    assert 'data-copy="work-request-url"' in html and 'data-copy="results-url"' in html


def test_password_typed_twice_must_match(admin_client_, department):
    response = admin_client_.post(
        URL, {"action": "password", "password1": "a" * 14, "password2": "b" * 14}
    )
    assert "The two passwords differ." in response.content.decode()
    assert not IVLSConnection.objects.filter(department=department).exists()


def test_short_password_is_refused(admin_client_, department):
    response = admin_client_.post(
        URL, {"action": "password", "password1": "short", "password2": "short"}
    )
    assert "at least 12 characters" in response.content.decode()


def test_password_set_and_then_enabled(admin_client_, department):
    admin_client_.post(URL, {"action": "password", "password1": OLD, "password2": OLD})
    connection = IVLSConnection.objects.get(department=department)
    assert password_matches(OLD, connection.password_digest) and not connection.enabled
    assert OLD not in page(admin_client_)
    admin_client_.post(URL, {"action": "connection", "enabled": "on"})
    connection.refresh_from_db()
    assert connection.enabled


def test_enabling_without_a_password_explains_why_not(admin_client_, department):
    response = admin_client_.post(URL, {"action": "connection", "enabled": "on"}, follow=True)
    assert "Set a password before enabling" in response.content.decode()


def test_generated_password_is_shown_once_and_works(admin_client_, department):
    response = admin_client_.post(URL, {"action": "generate"})
    html = response.content.decode()
    generated = re.search(r'id="generated-password" value="([^"]+)"', html).group(1)
    assert len(generated) >= 12
    assert response["Cache-Control"] == "no-store"
    connection = IVLSConnection.objects.get(department=department)
    assert password_matches(generated, connection.password_digest)
    assert generated not in page(admin_client_)


@pytest.fixture
def shared(department, admin_user):
    """A second department on the same IVLS (same password), the admin is admin of both."""
    espoo = DepartmentFactory(name="Espoo", time_zone=department.time_zone)
    MembershipFactory(user=admin_user, department=espoo, role=Membership.ROLE_ADMIN)
    connection_configure(department=department, enabled=True, password=OLD)
    connection_configure(department=espoo, enabled=True, password=OLD)
    return espoo


def test_sharing_departments_change_password_together(admin_client_, department, shared):
    html = page(admin_client_)
    assert "share the current password" in html
    assert f'value="{department.pk}, {shared.pk}"' in html  # the Unit ID for the shared IVLS
    new = "brand-new-password-22"
    admin_client_.post(
        URL, {"action": "password", "password1": new, "password2": new, "apply_to_shared": "on"}
    )
    for dept in (department, shared):
        connection = IVLSConnection.objects.get(department=dept)
        assert password_matches(new, connection.password_digest)
        assert connection.enabled


def test_changing_only_this_department_leaves_the_other(admin_client_, department, shared):
    new = "brand-new-password-22"
    admin_client_.post(URL, {"action": "password", "password1": new, "password2": new})
    assert password_matches(new, IVLSConnection.objects.get(department=department).password_digest)
    assert password_matches(OLD, IVLSConnection.objects.get(department=shared).password_digest)


def test_shared_change_needs_admin_of_every_department(department, shared, admin_user):
    Membership.objects.filter(user=admin_user, department=shared).update(role=Membership.ROLE_VET)
    http = signed_in(admin_user)
    http.post(reverse("department_switch"), {"department": department.pk})
    new = "brand-new-password-22"
    response = http.post(
        URL, {"action": "password", "password1": new, "password2": new, "apply_to_shared": "on"}
    )
    assert "You are not an admin of Espoo" in response.content.decode()
    for dept in (department, shared):
        assert password_matches(OLD, IVLSConnection.objects.get(department=dept).password_digest)


@pytest.mark.parametrize(
    ("seconds_ago", "text"),
    [(30, "Connected"), (600, "Not heard from since"), (None, "Never heard from")],
)
def test_connection_health_in_words(admin_client_, department, seconds_ago, text):
    connection_configure(department=department, enabled=True, password=OLD)
    heard = timezone.now() - dt.timedelta(seconds=seconds_ago) if seconds_ago else None
    IVLSConnection.objects.filter(department=department).update(last_heard_at=heard)
    html = page(admin_client_)
    health = re.search(r'<p class="health (ok|bad)"[^>]*>(.*?)</p>', html, re.S)
    assert text in health.group(2)
    assert health.group(1) == ("ok" if text == "Connected" else "bad")


def test_pending_requests_and_exchange_log_are_listed(
    admin_client_, department, consultation, chem17, vet
):
    order, _ = chem17
    referral = referral_create(consultation=consultation, items=[order], created_by=vet)
    ExchangeLogEntry.objects.create(
        department=department,
        method="POST",
        endpoint="/api/ivls/v1/results/",
        status_code=201,
        outcome="accepted",
        requisition_number=str(referral.number),
    )
    html = page(admin_client_)
    pending = WorkRequest.objects.get(referral=referral)
    assert pending.file_name in html and str(referral.number) in html
    assert "POST /api/ivls/v1/results/" in html and "accepted" in html
