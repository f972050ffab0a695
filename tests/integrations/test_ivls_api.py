"""The plug-in API's authentication, work requests, status, errors and exchange log
(ICP-API.md). Result files and reports are in test_ivls_results.py."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations.ivls import exchange
from integrations.ivls.models import (
    AuthFailure,
    ExchangeLogEntry,
    IVLSConnection,
    PollCounter,
    WorkRequest,
)
from integrations.ivls.services import exchange_log_prune
from integrations.ivls.tasks import exchange_log_prune as exchange_log_prune_task
from labs.models import Referral
from labs.rundata import AssayData, RunData
from labs.services import run_record
from pims.models import AuditEvent
from tests.factories import DepartmentFactory
from tests.integrations.helpers import (
    API,
    PASSWORD,
    auth,
    connected_department,
    ivls_referral,
)

POLL = API + "work-requests/"


@pytest.fixture(autouse=True)
def _fresh_poll_counts():
    # Empty-poll counts are held per process between flushes; each test starts clean.
    exchange._empty_polls.clear()
    exchange._last_flush.clear()
    yield
    exchange._empty_polls.clear()
    exchange._last_flush.clear()


@pytest.fixture
def dept(db):
    return connected_department()


def error_of(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) >= {"error"} and body["error"]
    return body["error"]


# --------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------


def test_no_credentials_is_401_with_basic_realm(client, dept):
    response = client.get(POLL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="ivls"'
    assert "Basic" in error_of(response)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic not-base64!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic ",
    ],
)
def test_malformed_credentials_are_401(client, dept, header):
    response = client.get(POLL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="ivls"'
    error_of(response)


@pytest.mark.parametrize("units", ["1,,2", ",1", "1,", "a", "1;2", "", " , "])
def test_malformed_unit_list_is_401(client, db, units):
    first = connected_department()
    connected_department()
    units = units.replace("1", str(first.pk))
    response = client.get(POLL, **auth(units))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="ivls"'


def test_unit_list_with_spaces_is_accepted(client, db):
    first, second, third = (connected_department() for _ in range(3))
    response = client.get(POLL, **auth(f" {first.pk}, {second.pk} ,{third.pk}"))
    assert response.status_code == 200


def test_unknown_unit_is_401(client, dept):
    response = client.get(POLL, **auth(f"{dept.pk},{dept.pk + 1000}"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="ivls"'


def test_department_without_connection_is_401(client, db):
    department = DepartmentFactory()
    assert client.get(POLL, **auth([department])).status_code == 401


def test_wrong_password_is_401(client, dept):
    response = client.get(POLL, **auth([dept], "not-the-password"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="ivls"'


def test_password_of_one_listed_unit_does_not_open_another(client, db):
    first = connected_department()
    second = connected_department(password="another-password-99")
    assert client.get(POLL, **auth([first, second])).status_code == 401
    assert client.get(POLL, **auth([first, second], "another-password-99")).status_code == 401


def test_disabled_connection_is_403_naming_the_unit(client, db):
    first = connected_department()
    second = connected_department(enabled=False)
    response = client.get(POLL, **auth([first, second]))
    assert response.status_code == 403
    assert f"unit {second.pk}" in error_of(response)
    assert str(first.pk) not in error_of(response).replace(str(second.pk), "")


def test_wrong_password_beats_disabled_connection(client, db):
    disabled = connected_department(enabled=False)
    assert client.get(POLL, **auth([disabled], "wrong-password!!")).status_code == 401


def test_password_change_takes_effect_at_once(client, dept):
    from integrations.ivls.services import connection_configure

    assert client.get(POLL, **auth([dept])).status_code == 200
    connection_configure(department=dept, enabled=True, password="a-brand-new-password")
    assert client.get(POLL, **auth([dept])).status_code == 401
    assert client.get(POLL, **auth([dept], "a-brand-new-password")).status_code == 200


def test_failures_from_one_address_throttle_that_address_and_unit(client, dept, settings):
    settings.IVLS_THROTTLE_FAILURES = 3
    settings.IVLS_THROTTLE_WINDOW_SECONDS = 300
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(3):
        assert client.get(POLL, **auth([dept], "wrong-password!!"), **here).status_code == 401
    throttled = client.get(POLL, **auth([dept], "wrong-password!!"), **here)
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 300
    error_of(throttled)
    # The right password from the same address waits too ...
    assert client.get(POLL, **auth([dept]), **here).status_code == 429
    # ... but not from another address, with the right password or a wrong one.
    elsewhere = {"REMOTE_ADDR": "198.51.100.9"}
    assert client.get(POLL, **auth([dept]), **elsewhere).status_code == 200
    assert client.get(POLL, **auth([dept], "wrong-password!!"), **elsewhere).status_code == 401
    # 429s are not counted as failures.
    assert AuthFailure.objects.filter(client_address="203.0.113.7").count() == 3


def test_throttle_is_per_unit(client, db, settings):
    settings.IVLS_THROTTLE_FAILURES = 2
    first, second = connected_department(), connected_department()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(2):
        client.get(POLL, **auth([first], "wrong-password!!"), **here)
    assert client.get(POLL, **auth([first]), **here).status_code == 429
    assert client.get(POLL, **auth([second]), **here).status_code == 200
    assert client.get(POLL, **auth([first, second]), **here).status_code == 429


def test_throttle_window_slides(client, dept, settings):
    settings.IVLS_THROTTLE_FAILURES = 2
    settings.IVLS_THROTTLE_WINDOW_SECONDS = 300
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(2):
        client.get(POLL, **auth([dept], "wrong-password!!"), **here)
    assert client.get(POLL, **auth([dept]), **here).status_code == 429
    # The oldest failure leaves the window: below the limit again.
    oldest = AuthFailure.objects.order_by("at").first()
    AuthFailure.objects.filter(pk=oldest.pk).update(at=timezone.now() - timedelta(seconds=301))
    assert client.get(POLL, **auth([dept]), **here).status_code == 200


def test_retry_after_counts_down_to_the_window_end(client, dept, settings):
    settings.IVLS_THROTTLE_FAILURES = 1
    settings.IVLS_THROTTLE_WINDOW_SECONDS = 300
    client.get(POLL, **auth([dept], "wrong-password!!"))
    AuthFailure.objects.update(at=timezone.now() - timedelta(seconds=200))
    response = client.get(POLL, **auth([dept]))
    assert response.status_code == 429
    assert 95 <= int(response["Retry-After"]) <= 101


def test_forwarded_address_is_trusted_only_behind_proxies(client, dept, settings):
    settings.IVLS_THROTTLE_FAILURES = 1
    forged = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.50"}
    # No trusted proxy: the header is ignored, the failure counts for the connection's address.
    client.get(POLL, **auth([dept], "wrong-password!!"), **forged)
    assert AuthFailure.objects.get().client_address == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    via_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.60"}
    client.get(POLL, **auth([dept], "wrong-password!!"), **via_proxy)
    assert AuthFailure.objects.filter(client_address="203.0.113.60").count() == 1
    # Behind the proxy, each client address has its own window.
    other = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.61"}
    assert client.get(POLL, **auth([dept]), **other).status_code == 200
    assert client.get(POLL, **auth([dept]), **via_proxy).status_code == 429


# --------------------------------------------------------------------------------------
# Work requests
# --------------------------------------------------------------------------------------


def test_poll_lists_pending_work_requests_oldest_first(client, dept):
    first = ivls_referral(dept, codes=("CHEM17",))
    second = ivls_referral(dept, codes=("SDMA",))
    response = client.get(POLL, **auth([dept]))
    assert response.status_code == 200
    body = response.json()
    assert body["has_more"] is False
    items = body["work_requests"]
    assert [item["requisition_number"] for item in items] == [
        str(first.number),
        str(second.number),
    ]
    item = items[0]
    work_request = WorkRequest.objects.get(referral=first)
    assert item == {
        "id": work_request.pk,
        "unit_id": dept.pk,
        "requisition_number": str(first.number),
        "action": "New",
        "created_at": item["created_at"],
        "file_name": f"WR-{work_request.pk}.xml",
        "xml": work_request.xml,
    }
    assert item["created_at"].endswith("Z")
    assert abs(
        timezone.datetime.fromisoformat(item["created_at"]) - work_request.created_at
    ) < timedelta(milliseconds=1)
    assert "<service_cd>CHEM17</service_cd>" in item["xml"]


def test_poll_limit_defaults_clamps_and_says_has_more(client, dept):
    referral = ivls_referral(dept)
    WorkRequest.objects.bulk_create(
        WorkRequest(department=dept, referral=referral, action="New", xml="<x/>")
        for _ in range(600)
    )

    def count(query):
        body = client.get(POLL + query, **auth([dept])).json()
        return len(body["work_requests"]), body["has_more"]

    assert count("") == (100, True)
    assert count("?limit=0") == (1, True)
    assert count("?limit=-5") == (1, True)
    assert count("?limit=7") == (7, True)
    assert count("?limit=9999") == (500, True)
    assert count("?limit=abc") == (100, True)
    WorkRequest.objects.filter(pk__in=WorkRequest.objects.order_by("id").values("pk")[:200]).update(
        delivered_at=timezone.now()
    )
    assert count("?limit=500") == (401, False)


def test_poll_shows_only_the_authenticated_units(client, db):
    mine, theirs = connected_department(), connected_department(password="their-password-1")
    ivls_referral(mine)
    ivls_referral(theirs)
    ivls_referral(theirs)
    body = client.get(POLL, **auth([mine])).json()
    assert {item["unit_id"] for item in body["work_requests"]} == {mine.pk}
    assert len(body["work_requests"]) == 1


def test_poll_over_several_units_merges_oldest_first(client, db):
    first, second = connected_department(), connected_department()
    a = ivls_referral(first)
    b = ivls_referral(second)
    c = ivls_referral(first)
    body = client.get(POLL, **auth([second, first])).json()
    assert [item["requisition_number"] for item in body["work_requests"]] == [
        str(r.number) for r in (a, b, c)
    ]


def test_ack_marks_delivered_idempotently_and_sends_the_referral(client, dept):
    referral = ivls_referral(dept)
    work_request = WorkRequest.objects.get(referral=referral)
    url = f"{POLL}{work_request.pk}/ack/"
    first = client.post(url, **auth([dept]))
    assert first.status_code == 200
    assert first.json() == {"id": work_request.pk, "status": "delivered"}
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_SENT
    second = client.post(url, **auth([dept]))
    assert second.status_code == 200
    assert second.json() == {"id": work_request.pk, "status": "delivered"}
    assert client.get(POLL, **auth([dept])).json()["work_requests"] == []
    assert (
        AuditEvent.objects.filter(action="referral.acknowledged", actor_type="plugin").count() == 1
    )


def test_unacknowledged_requests_are_served_again(client, dept):
    ivls_referral(dept)
    assert len(client.get(POLL, **auth([dept])).json()["work_requests"]) == 1
    assert len(client.get(POLL, **auth([dept])).json()["work_requests"]) == 1


def test_ack_of_another_departments_request_is_404(client, db):
    mine = connected_department()
    theirs = connected_department(password="their-password-1")
    referral = ivls_referral(theirs)
    work_request = WorkRequest.objects.get(referral=referral)
    response = client.post(f"{POLL}{work_request.pk}/ack/", **auth([mine]))
    assert response.status_code == 404
    error_of(response)
    work_request.refresh_from_db()
    assert work_request.delivered_at is None
    assert client.post(f"{POLL}999999/ack/", **auth([mine])).status_code == 404


def test_ack_after_results_changes_nothing(client, dept):
    referral = ivls_referral(dept, codes=("GLU",))
    patient = referral.consultation.patient
    run_record(
        departments=[dept],
        run=RunData(
            run_id="r1",
            instrument="Catalyst_One",
            requisition_number=str(referral.number),
            patient_id=str(patient.pk),
            patient_name=patient.name,
            assays=(AssayData(code="GLU", value_text="117"),),
        ),
    )
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE
    work_request = WorkRequest.objects.get(referral=referral)
    assert client.post(f"{POLL}{work_request.pk}/ack/", **auth([dept])).status_code == 200
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


def test_ack_of_a_cancel_does_not_move_the_referral(client, dept):
    from labs.services import referral_cancel

    referral = ivls_referral(dept)
    referral_cancel(referral=referral, reason="owner left")
    cancel = WorkRequest.objects.get(referral=referral, action="Cancel")
    body = client.get(POLL, **auth([dept])).json()
    assert [item["action"] for item in body["work_requests"]] == ["New", "Cancel"]
    assert client.post(f"{POLL}{cancel.pk}/ack/", **auth([dept])).status_code == 200
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_CANCELLED


def _poll_queries(client, units, django_assert_max_num_queries) -> int:
    client.get(POLL, **auth(units))  # the heard-from write happens on the first call
    with django_assert_max_num_queries(5) as captured:
        response = client.get(POLL, **auth(units))
    assert response.status_code == 200
    assert response.json()["work_requests"]
    return len(captured.captured_queries)


def test_poll_query_count_does_not_grow_with_backlog_or_units(
    client, db, django_assert_max_num_queries
):
    departments = [connected_department() for _ in range(3)]
    one = ivls_referral(departments[0])
    one_pending = _poll_queries(client, [departments[0]], django_assert_max_num_queries)
    WorkRequest.objects.bulk_create(
        WorkRequest(department=departments[0], referral=one, action="New", xml="<x/>")
        for _ in range(99)
    )
    hundred_pending = _poll_queries(client, [departments[0]], django_assert_max_num_queries)
    for department in departments[1:]:
        ivls_referral(department)
    three_units = _poll_queries(client, departments, django_assert_max_num_queries)
    assert one_pending == hundred_pending == three_units


def test_empty_poll_writes_nothing(client, dept, django_assert_num_queries):
    client.get(POLL, **auth([dept]))  # first call: heard-from and the count flush
    with django_assert_num_queries(3) as captured:
        response = client.get(POLL, **auth([dept]))
    assert response.json() == {"work_requests": [], "has_more": False}
    assert not any(
        q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        for q in captured.captured_queries
    )


# --------------------------------------------------------------------------------------
# Status and last heard from
# --------------------------------------------------------------------------------------


def test_status_reports_units_time_and_pending(client, db):
    first, second = connected_department(), connected_department()
    ivls_referral(first)
    ivls_referral(second)
    ivls_referral(second)
    response = client.get(API + "status/", **auth(f"{second.pk}, {first.pk}"))
    assert response.status_code == 200
    body = response.json()
    assert body["units"] == sorted([first.pk, second.pk])
    assert all(isinstance(unit, int) for unit in body["units"])
    assert body["pending_work_requests"] == 3
    server_time = timezone.datetime.fromisoformat(body["server_time"])
    assert server_time.tzinfo is not None
    assert abs(server_time - timezone.now()) < timedelta(seconds=5)


def test_heard_from_is_written_at_most_once_per_interval(client, db, settings):
    settings.IVLS_HEARD_FROM_INTERVAL_SECONDS = 30
    first, second = connected_department(), connected_department()
    assert IVLSConnection.objects.get(pk=first.pk).last_heard_at is None
    client.get(API + "status/", **auth([first, second]))
    heard = {c.pk: c.last_heard_at for c in IVLSConnection.objects.all()}
    assert heard[first.pk] is not None and heard[second.pk] is not None
    client.get(POLL, **auth([first]))
    assert IVLSConnection.objects.get(pk=first.pk).last_heard_at == heard[first.pk]
    IVLSConnection.objects.filter(pk=first.pk).update(
        last_heard_at=timezone.now() - timedelta(seconds=31)
    )
    client.get(POLL, **auth([first]))
    assert IVLSConnection.objects.get(pk=first.pk).last_heard_at > heard[first.pk]
    assert IVLSConnection.objects.get(pk=second.pk).last_heard_at == heard[second.pk]


def test_failed_authentication_is_not_heard_from(client, dept):
    client.get(POLL, **auth([dept], "wrong-password!!"))
    assert IVLSConnection.objects.get(pk=dept.pk).last_heard_at is None


# --------------------------------------------------------------------------------------
# Errors are JSON
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "nothing-here/", 404),
        ("get", "status", 404),
        ("post", "results", 404),
        ("get", "work-requests/abc/ack/", 404),
        ("get", "results/", 405),
        ("delete", "status/", 405),
        ("put", "work-requests/", 405),
        ("get", "work-requests/1/ack/", 405),
    ],
)
def test_every_error_is_json(client, dept, method, path, code):
    response = getattr(client, method)(API + path, **auth([dept]))
    assert response.status_code == code
    error_of(response)


def test_unknown_paths_are_json_without_credentials_too(client, db):
    for path in ("/api/ivls/", "/api/ivls/v2/status/", "/api/ivls/v1/x"):
        response = client.post(path)
        assert response.status_code == 404
        error_of(response)


def test_answers_json_whatever_the_client_accepts(client, dept):
    response = client.get(POLL, HTTP_ACCEPT="text/html", **auth([dept]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    response = client.get(POLL, HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    error_of(response)


def test_a_host_the_server_does_not_serve_is_json_400(client, dept):
    response = client.get(API + "status/", HTTP_HOST="evil.example", **auth([dept]))
    assert response.status_code == 400
    error_of(response)


def test_a_failure_outside_the_api_views_is_json_500(rf):
    from integrations.ivls.api import handler500

    response = handler500(rf.get(API + "status/"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]
    assert not handler500(rf.get("/")).get("Content-Type", "").startswith("application/json")


def test_unexpected_error_is_json_500(client, dept, monkeypatch):
    from integrations.ivls import selectors

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "work_requests_pending", broken)
    response = client.get(POLL, **auth([dept]))
    assert response.status_code == 500
    error_of(response)


@pytest.mark.django_db(transaction=True)
def test_database_down_answers_503_json_everywhere(client):
    department = connected_department()
    settings_dict = connection.settings_dict
    port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = "1"  # nothing listens there: every query fails to connect
    try:
        for method, path, kwargs in [
            ("get", "work-requests/", {}),
            ("get", "status/", {}),
            ("post", "work-requests/1/ack/", {}),
            ("post", "results/", {"data": b"<message/>", "content_type": "application/xml"}),
            ("post", "reports/", {"data": b"%PDF-1.4", "content_type": "application/pdf"}),
            ("get", "results/1/", {}),
        ]:
            response = getattr(client, method)(API + path, **kwargs, **auth([department]))
            assert response.status_code == 503, path
            assert "database" in error_of(response)
        # Authentication needs the database too: a wrong password also gets 503.
        response = client.get(POLL, **auth([department], "wrong-password!!"))
        assert response.status_code == 503
    finally:
        connection.close()
        settings_dict["PORT"] = port
    assert client.get(POLL, **auth([department])).status_code == 200


# --------------------------------------------------------------------------------------
# The exchange log
# --------------------------------------------------------------------------------------


def test_calls_are_logged_per_department(client, db):
    first, second = connected_department(), connected_department()
    referral = ivls_referral(first)
    client.get(POLL, **auth([first, second]), REMOTE_ADDR="192.0.2.10")
    entries = ExchangeLogEntry.objects.filter(endpoint=POLL)
    assert {e.department_id for e in entries} == {first.pk, second.pk}
    entry = entries.get(department=first)
    assert entry.status_code == 200
    assert entry.method == "GET"
    assert entry.requisition_number == str(referral.number)
    assert entry.client_address == "192.0.2.10"
    assert entry.bytes > 0
    assert entry.unit_list == f"{first.pk},{second.pk}"
    client.get(API + "status/", **auth([first]))
    assert ExchangeLogEntry.objects.filter(endpoint=API + "status/", department=first).exists()


def test_empty_polls_are_counted_not_logged(client, dept, settings):
    settings.IVLS_HEARD_FROM_INTERVAL_SECONDS = 30
    for _ in range(5):
        assert client.get(POLL, **auth([dept])).status_code == 200
    assert not ExchangeLogEntry.objects.filter(endpoint=POLL).exists()
    # The first poll in a process flushes at once; the rest wait for the next flush.
    assert PollCounter.objects.get(department=dept).empty_polls == 1
    exchange.empty_polls_flush()
    assert PollCounter.objects.get(department=dept, day=timezone.localdate()).empty_polls == 5


def test_empty_poll_counts_flush_with_the_heard_from_write(client, dept, settings):
    settings.IVLS_HEARD_FROM_INTERVAL_SECONDS = 30
    for _ in range(3):
        client.get(POLL, **auth([dept]))
    assert PollCounter.objects.get(department=dept).empty_polls == 1
    IVLSConnection.objects.filter(pk=dept.pk).update(
        last_heard_at=timezone.now() - timedelta(seconds=31)
    )
    client.get(POLL, **auth([dept]))
    assert PollCounter.objects.get(department=dept).empty_polls == 4


def test_failed_authentications_are_always_logged(client, dept):
    client.get(POLL, **auth([dept], "wrong-password!!"), REMOTE_ADDR="192.0.2.77")
    entry = ExchangeLogEntry.objects.get(department=dept)
    assert entry.status_code == 401
    assert entry.outcome == "wrong password"
    assert entry.client_address == "192.0.2.77"
    client.get(POLL, **auth(f"{dept.pk + 5000}"))
    unknown = ExchangeLogEntry.objects.get(department__isnull=True, status_code=401)
    assert unknown.unit_list == str(dept.pk + 5000)
    client.get(POLL, **auth("1,,2"))
    assert ExchangeLogEntry.objects.filter(department__isnull=True, unit_list="1,,2").exists()
    client.get(POLL)
    assert ExchangeLogEntry.objects.filter(outcome="no or malformed credentials").exists()


def test_disabled_and_throttled_calls_are_logged(client, db, settings):
    settings.IVLS_THROTTLE_FAILURES = 1
    disabled = connected_department(enabled=False)
    client.get(POLL, **auth([disabled]))
    assert ExchangeLogEntry.objects.get(department=disabled, status_code=403)
    enabled = connected_department()
    client.get(POLL, **auth([enabled], "wrong-password!!"))
    client.get(POLL, **auth([enabled]))
    assert ExchangeLogEntry.objects.get(department=enabled, status_code=429).outcome == "throttled"


def test_prune_deletes_entries_past_retention(client, dept, settings):
    settings.EXCHANGE_LOG_RETENTION_DAYS = 90
    client.get(API + "status/", **auth([dept]))
    client.get(API + "status/", **auth([dept]))
    old, recent = ExchangeLogEntry.objects.order_by("id")
    ExchangeLogEntry.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=91))
    AuthFailure.objects.create(client_address="x", unit="1", at=timezone.now() - timedelta(days=1))
    assert exchange_log_prune_task.delay().get() == 1
    assert list(ExchangeLogEntry.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AuthFailure.objects.exists()
    assert exchange_log_prune() == 0


# --------------------------------------------------------------------------------------
# OpenAPI
# --------------------------------------------------------------------------------------


def test_schema_describes_the_plugin_api(client, db):
    response = client.get(API + "schema/")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert set(paths) == {
        "/api/ivls/v1/work-requests/",
        "/api/ivls/v1/work-requests/{work_request_id}/ack/",
        "/api/ivls/v1/results/",
        "/api/ivls/v1/results/{file_id}/",
        "/api/ivls/v1/reports/",
        "/api/ivls/v1/status/",
    }
    results = paths["/api/ivls/v1/results/"]["post"]
    assert set(results["requestBody"]["content"]) == {
        "application/xml",
        "text/xml",
        "multipart/form-data",
    }
    assert {"201", "200", "401", "413", "422", "503"} <= set(results["responses"])
    poll = paths["/api/ivls/v1/work-requests/"]["get"]
    listed = poll["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][listed.rsplit("/", 1)[-1]]
    assert set(component["properties"]) == {"work_requests", "has_more"}
    assert schema["components"]["securitySchemes"]["ivlsBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": schema["components"]["securitySchemes"]["ivlsBasic"]["description"],
    }


def test_swagger_ui_is_served_without_a_cdn(client, db):
    response = client.get(API + "docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert "/api/ivls/v1/schema/" in page


def test_password_may_contain_colons(client, dept):
    from integrations.ivls.services import connection_configure

    connection_configure(department=dept, enabled=True, password="pass:with:colons")
    assert client.get(POLL, **auth([dept], "pass:with:colons")).status_code == 200
    assert client.get(POLL, **auth([dept], PASSWORD)).status_code == 401
