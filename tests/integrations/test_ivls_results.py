"""Result files and PDF reports over the plug-in API; their processing, the sweep, and the
failures a real deployment sees (Redis down, a worker, transient database errors)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from integrations.ivls import services
from integrations.ivls.models import (
    ExchangeLogEntry,
    InboundResultContent,
    InboundResultFile,
)
from integrations.ivls.services import result_file_process, result_file_receive
from integrations.ivls.tasks import result_files_sweep
from labs.models import LabRun, Referral, Result, ResultDocument
from labs.services import run_attach, run_dismiss
from patients.models import Client as Owner
from patients.models import Patient
from tests.conftest import wait_for
from tests.factories import ClientFactory, PatientFactory, UserFactory
from tests.integrations.helpers import (
    API,
    Assay,
    auth,
    connected_department,
    ivls_referral,
    pdf,
    referral_xml,
    result_xml,
)

RESULTS = API + "results/"
REPORTS = API + "reports/"


@pytest.fixture
def dept(db):
    return connected_department()


def post_xml(client, units, content: bytes, **extra):
    return client.post(
        RESULTS, data=content, content_type="application/xml", **auth(units), **extra
    )


def post_and_process(client, units, content: bytes, capture):
    """Post a file; its processing runs when the transaction commits, as in production."""
    with capture(execute=True):
        response = post_xml(client, units, content)
    return response


def status_of(client, units, file_id: int) -> dict:
    response = client.get(f"{RESULTS}{file_id}/", **auth(units))
    assert response.status_code == 200
    return response.json()


# --------------------------------------------------------------------------------------
# Posting result files
# --------------------------------------------------------------------------------------


def test_new_file_is_accepted_and_matched_after_the_answer(
    client, dept, django_capture_on_commit_callbacks
):
    referral = ivls_referral(dept, codes=("GLU",))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_xml(client, [dept], referral_xml(referral), HTTP_X_FILE_NAME="run 1.xml")
    assert response.status_code == 201
    file_id = response.json()["id"]
    assert response.json() == {"status": "accepted", "id": file_id}
    stored = InboundResultFile.objects.get(pk=file_id)
    assert stored.file_name == "run 1.xml"
    assert bytes(InboundResultContent.objects.get(pk=file_id).data) == referral_xml(referral)
    assert status_of(client, [dept], file_id)["status"] == "received"
    # Matching happens after the answer, in the task queued on commit.
    assert len(callbacks) == 1
    callbacks[0]()
    body = status_of(client, [dept], file_id)
    assert body["status"] == "matched"
    assert body["requisition_number"] == str(referral.number)
    assert body["diagnostic_set_id"] == "20261122_140311_17"
    assert body["received_at"].endswith("Z")
    assert str(referral.number) in body["detail"]
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


def test_text_xml_and_percent_encoded_file_names_are_accepted(client, dept):
    response = client.post(
        RESULTS,
        data=result_xml(),
        content_type="text/xml; charset=utf-8",
        HTTP_X_FILE_NAME="tulos%20%C3%A4.xml",
        **auth([dept]),
    )
    assert response.status_code == 201
    assert InboundResultFile.objects.get().file_name == "tulos ä.xml"


def test_same_bytes_again_is_200_duplicate(client, dept):
    content = result_xml(requisition="5")
    first = post_xml(client, [dept], content)
    second = post_xml(client, [dept], content)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert InboundResultFile.objects.count() == 1


def test_same_bytes_for_an_overlapping_unit_list_is_a_duplicate(client, db):
    first, second = connected_department(), connected_department()
    content = result_xml()
    original = post_xml(client, [first, second], content)
    again = post_xml(client, [second], content)
    assert again.status_code == 200
    assert again.json()["id"] == original.json()["id"]


def test_same_bytes_for_another_department_are_its_own_file(client, db):
    first = connected_department()
    other = connected_department(password="other-password-12")
    content = result_xml()
    assert post_xml(client, [first], content).status_code == 201
    response = client.post(
        RESULTS, data=content, content_type="application/xml", **auth([other], "other-password-12")
    )
    assert response.status_code == 201
    assert InboundResultFile.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_identical_posts_at_the_same_instant_give_one_201_and_one_200():
    department = connected_department()
    content = result_xml(requisition="77")
    barrier = threading.Barrier(2)
    answers = []

    def post():
        try:
            barrier.wait()
            answers.append(post_xml(Client(), [department], content))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert {a.json()["id"] for a in answers} == {InboundResultFile.objects.get().pk}


def test_multipart_with_report_stores_both(client, dept, django_capture_on_commit_callbacks):
    referral = ivls_referral(dept, codes=("GLU",))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            RESULTS,
            data={
                "file": SimpleUploadedFile("r.xml", referral_xml(referral), "application/xml"),
                "report": SimpleUploadedFile(
                    "20261122_140311_17.pdf", pdf("one"), "application/pdf"
                ),
            },
            **auth([dept]),
        )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "accepted"
    assert body["report"]["status"] == "accepted"
    document = ResultDocument.objects.get(pk=body["report"]["id"])
    assert document.referral == referral
    assert document.pdf.read() == pdf("one")
    assert InboundResultFile.objects.get().file_name == "r.xml"


def test_multipart_without_file_part_is_422(client, dept):
    response = client.post(
        RESULTS, data={"other": SimpleUploadedFile("r.xml", b"<x/>")}, **auth([dept])
    )
    assert response.status_code == 422
    assert "file" in response.json()["error"]


def test_multipart_report_that_is_not_a_pdf_keeps_the_result(client, dept):
    response = client.post(
        RESULTS,
        data={
            "file": SimpleUploadedFile("r.xml", result_xml()),
            "report": SimpleUploadedFile("x.pdf", b"not a pdf"),
        },
        **auth([dept]),
    )
    assert response.status_code == 201
    assert response.json()["report"]["status"] == "rejected"
    assert not ResultDocument.objects.exists()
    assert InboundResultFile.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"this is not xml", "not XML"),
        (b"<message><unclosed></message>", "well-formed"),
        (b'<?xml version="1.0"?><html><body/></html>', "root element is <html>"),
        (
            b'<?xml version="1.0"?><message message_type="Result"><body/></message>',
            "no <result> element",
        ),
    ],
)
def test_unreadable_file_is_422_and_kept_as_rejected(client, dept, content, words):
    response = post_xml(client, [dept], content)
    assert response.status_code == 422
    body = response.json()
    assert words in body["error"]
    stored = InboundResultFile.objects.get(pk=body["id"])
    assert stored.status == InboundResultFile.STATUS_REJECTED
    assert words in stored.error
    assert bytes(stored.content.data) == content
    # The plug-in retrying it gets the same answer, and nothing is stored twice.
    assert post_xml(client, [dept], content).status_code == 422
    assert InboundResultFile.objects.count() == 1
    assert status_of(client, [dept], body["id"])["status"] == "rejected"


def test_empty_file_is_422_and_kept_as_rejected(client, dept):
    response = client.generic("POST", RESULTS, b"", CONTENT_TYPE="application/xml", **auth([dept]))
    assert response.status_code == 422
    assert "empty" in response.json()["error"]
    assert InboundResultFile.objects.get().status == InboundResultFile.STATUS_REJECTED


def test_message_that_is_not_a_result_is_ignored(client, dept, own_interlink):
    content = (own_interlink / "acknowledgement.xml").read_bytes()
    response = post_xml(client, [dept], content)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "id": response.json()["id"]}
    stored = InboundResultFile.objects.get()
    assert stored.status == InboundResultFile.STATUS_IGNORED
    assert stored.message_type == "Acknowledgement"
    assert post_xml(client, [dept], content).json()["status"] == "ignored"
    assert status_of(client, [dept], stored.pk)["status"] == "ignored"


def test_oversized_xml_is_413_and_nothing_is_stored(client, dept, settings):
    limit = settings.IVLS_MAX_XML_BYTES
    content = result_xml()
    big = content + b" " * (limit - len(content) + 1)
    response = post_xml(client, [dept], big)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    assert not InboundResultFile.objects.exists()
    # Exactly at the limit is fine.
    assert post_xml(client, [dept], big[:limit]).status_code == 201
    log = ExchangeLogEntry.objects.filter(status_code=413).get()
    assert log.department == dept


def test_oversized_multipart_parts_are_413_each_on_its_own(client, dept, settings):
    settings.IVLS_MAX_XML_BYTES = 2000
    settings.IVLS_MAX_PDF_BYTES = 3000
    small_xml = result_xml()
    assert len(small_xml) < 2000
    too_big_xml = SimpleUploadedFile("r.xml", small_xml + b" " * 2000)
    response = client.post(RESULTS, data={"file": too_big_xml}, **auth([dept]))
    assert response.status_code == 413
    too_big_pdf = SimpleUploadedFile("r.pdf", pdf() + b" " * 3000)
    response = client.post(
        RESULTS,
        data={"file": SimpleUploadedFile("r.xml", small_xml), "report": too_big_pdf},
        **auth([dept]),
    )
    assert response.status_code == 413
    assert not InboundResultFile.objects.exists()
    # A PDF larger than the XML limit is fine: each part has its own limit.
    response = client.post(
        RESULTS,
        data={
            "file": SimpleUploadedFile("r.xml", small_xml),
            "report": SimpleUploadedFile("r.pdf", pdf() + b" " * 2500),
        },
        **auth([dept]),
    )
    assert response.status_code == 201


def test_wrong_content_type_is_415_json(client, dept):
    response = client.post(RESULTS, data=b"x", content_type="text/plain", **auth([dept]))
    assert response.status_code == 415
    assert "application/xml" in response.json()["error"]


def test_result_file_of_another_department_is_404(client, db):
    mine = connected_department()
    theirs = connected_department(password="their-password-1")
    response = client.post(
        RESULTS,
        data=result_xml(),
        content_type="application/xml",
        **auth([theirs], "their-password-1"),
    )
    file_id = response.json()["id"]
    answer = client.get(f"{RESULTS}{file_id}/", **auth([mine]))
    assert answer.status_code == 404
    assert answer.json()["error"]
    assert (
        client.get(f"{RESULTS}{file_id}/", **auth([theirs], "their-password-1")).status_code == 200
    )


def test_result_file_is_visible_to_any_unit_list_including_its_department(client, db):
    first, second = connected_department(), connected_department()
    file_id = post_xml(client, [first, second], result_xml()).json()["id"]
    assert client.get(f"{RESULTS}{file_id}/", **auth([second])).status_code == 200
    assert client.get(f"{RESULTS}{file_id}/", **auth([first])).status_code == 200


def test_upload_is_logged_with_its_requisition_number(client, dept):
    referral = ivls_referral(dept)
    content = referral_xml(referral)
    post_xml(client, [dept], content, REMOTE_ADDR="192.0.2.5")
    entry = ExchangeLogEntry.objects.get(endpoint=RESULTS)
    assert entry.requisition_number == str(referral.number)
    assert entry.status_code == 201
    assert entry.bytes == len(content)
    assert entry.outcome.startswith("accepted")


# --------------------------------------------------------------------------------------
# Corrections and resends
# --------------------------------------------------------------------------------------


def test_corrected_run_is_201_and_a_new_revision(client, dept, django_capture_on_commit_callbacks):
    referral = ivls_referral(dept, codes=("GLU",))
    first = post_and_process(
        client, [dept], referral_xml(referral), django_capture_on_commit_callbacks
    )
    corrected = referral_xml(
        referral,
        sub_type="Replace_Previous_Results",
        assays=(Assay("GLU", "150", "mg/dL", "74", "143"),),
    )
    second = post_and_process(client, [dept], corrected, django_capture_on_commit_callbacks)
    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    run = LabRun.objects.get()
    assert run.current_revision == 2
    current = Result.objects.get(run=run, is_current=True)
    assert (current.revision, current.value_text, current.flag) == (2, "150", "H")
    old = Result.objects.get(run=run, is_current=False)
    assert (old.revision, old.value_text) == (1, "117")
    assert status_of(client, [dept], second.json()["id"])["status"] == "matched"


def test_resend_with_equal_results_is_200_duplicate(
    client, dept, django_capture_on_commit_callbacks
):
    referral = ivls_referral(dept, codes=("GLU",))
    first = post_and_process(
        client, [dept], referral_xml(referral), django_capture_on_commit_callbacks
    )
    resend = referral_xml(referral, sub_type="Resend_of_Previous_Results")
    response = post_xml(client, [dept], resend)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert LabRun.objects.get().current_revision == 1


def test_resend_with_different_results_is_a_new_revision(
    client, dept, django_capture_on_commit_callbacks
):
    referral = ivls_referral(dept, codes=("GLU",))
    post_and_process(client, [dept], referral_xml(referral), django_capture_on_commit_callbacks)
    resend = referral_xml(
        referral, sub_type="Resend_of_Previous_Results", assays=(Assay("GLU", "99"),)
    )
    response = post_and_process(client, [dept], resend, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert LabRun.objects.get().current_revision == 2


def test_new_results_with_equal_content_end_as_duplicate(
    client, dept, django_capture_on_commit_callbacks
):
    referral = ivls_referral(dept, codes=("GLU",))
    post_and_process(client, [dept], referral_xml(referral), django_capture_on_commit_callbacks)
    same_results = referral_xml(referral, run_dt="11/22/2026 02:03:11.120 PM ")
    response = post_and_process(client, [dept], same_results, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert status_of(client, [dept], response.json()["id"])["status"] == "duplicate"
    assert LabRun.objects.get().current_revision == 1


# --------------------------------------------------------------------------------------
# Real and project fixtures through the API
# --------------------------------------------------------------------------------------


def _with_pk(model, obj, pk: int):
    """Give a freshly created row a chosen id (the real files name ids such as 000001)."""
    model.objects.filter(pk=obj.pk).update(id=pk)
    return model.objects.get(pk=pk)


def test_catalyst_one_file_matches_its_referral(
    client, dept, shared_interlink, django_capture_on_commit_callbacks
):
    owner = _with_pk(Owner, ClientFactory(first_name="王小明", last_name="OO"), 1)
    patient = _with_pk(Patient, PatientFactory(client=owner, name="娜娜"), 1)
    referral = ivls_referral(dept, codes=("CHEM10",), patient=patient)
    Referral.objects.filter(pk=referral.pk).update(number=1)
    content = (shared_interlink / "catalyst-one.xml").read_bytes()
    response = post_and_process(client, [dept], content, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    assert status_of(client, [dept], response.json()["id"])["status"] == "matched"
    run = LabRun.objects.get()
    assert run.referral_id == referral.pk
    assert run.instrument == "Catalyst_One"
    assert run.run_time_text == "09/09/2011 10:36:47.880 AM"
    assert timezone.localtime(run.run_time, dept.zone).strftime("%H:%M:%S") == "10:36:47"
    results = {r.code: r for r in Result.objects.filter(run=run)}
    assert set(results) == {"GLU", "BUN", "CREA", "SDMA"}
    assert results["GLU"].value_text == "117" and results["GLU"].flag == "N"
    assert results["BUN"].flag == "N"
    assert results["SDMA"].unit == "μg/dL"
    # Codes nobody set up become zero-price items on the referral and the consultation.
    referral.refresh_from_db()
    lines = {line.item.code: line for line in referral.lines.select_related("item")}
    assert lines["SDMA"].added_by_matching and lines["SDMA"].item.auto_created
    assert lines["SDMA"].consultation_line.unit_price == Decimal("0.00")


def test_snap_triple_without_requisition_waits_in_both_departments_review(
    client, db, shared_interlink, django_capture_on_commit_callbacks
):
    first, second = connected_department(), connected_department()
    content = (shared_interlink / "snap-triple.xml").read_bytes()
    response = post_and_process(
        client, [first, second], content, django_capture_on_commit_callbacks
    )
    assert response.status_code == 201
    assert status_of(client, [first], response.json()["id"])["status"] == "unmatched"
    run = LabRun.objects.get()
    assert run.unit_key == f"{first.pk},{second.pk}"
    for department in (first, second):
        assert list(
            LabRun.objects.filter(departments=department, review_state=LabRun.STATE_UNMATCHED)
        ) == [run]
    assert {r.code: r.value_text for r in run.results.all()} == {
        "FeLV": "Positive",
        "FIV": "Negative",
        "HW": "Positive",
    }
    assert all(r.flag == "" and r.referral_id is None for r in run.results.all())


def test_big5_file_matches_with_its_names(client, dept, own_interlink, capture_callbacks):
    owner = _with_pk(Owner, ClientFactory(first_name="美玲", last_name="陳"), 4102)
    patient = _with_pk(Patient, PatientFactory(client=owner, name="小白"), 8830)
    referral = ivls_referral(dept, codes=("CHEM",), patient=patient)
    Referral.objects.filter(pk=referral.pk).update(number=100077)
    content = (own_interlink / "big5-chemistry.xml").read_bytes()
    response = post_and_process(client, [dept], content, capture_callbacks)
    assert status_of(client, [dept], response.json()["id"])["status"] == "matched"
    run = LabRun.objects.get()
    assert run.sent["patient"]["name"] == "小白"
    assert run.sent["doctor"] == {"first_name": "志明", "last_name": "林"}
    assert Result.objects.get(run=run, code="T4").unit == "μg/dL"


def test_text_values_file_keeps_text_and_has_no_flags(
    client, dept, own_interlink, capture_callbacks
):
    response = post_and_process(
        client, [dept], (own_interlink / "text-values.xml").read_bytes(), capture_callbacks
    )
    assert response.status_code == 201
    run = LabRun.objects.get()
    assert run.review_state == LabRun.STATE_UNMATCHED  # no referral 100050 here
    yeast = Result.objects.get(run=run, code="YEAST")
    assert yeast.value_text == "1+ Few yeast seen."
    assert yeast.value_number is None and yeast.flag == ""
    assert run.run_time is None and run.run_time_text == "not a time"
    assert "end." in run.notes


def test_replace_previous_results_fixture_is_accepted(
    client, dept, own_interlink, capture_callbacks
):
    response = post_and_process(
        client,
        [dept],
        (own_interlink / "replace-previous-results.xml").read_bytes(),
        capture_callbacks,
    )
    assert response.status_code == 201
    results = {r.code: r for r in Result.objects.all()}
    assert all("µ" not in r.unit for r in results.values())


@pytest.fixture
def capture_callbacks(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def post_pdf(client, units, content: bytes, name="20261122_140311_17.pdf", **extra):
    return client.post(
        REPORTS,
        data=content,
        content_type="application/pdf",
        HTTP_X_FILE_NAME=name,
        **auth(units),
        **extra,
    )


def test_report_after_its_result_file_is_attached_to_the_referral(client, dept, capture_callbacks):
    referral = ivls_referral(dept, codes=("GLU",))
    post_and_process(client, [dept], referral_xml(referral), capture_callbacks)
    response = post_pdf(client, [dept], pdf("after"))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "accepted" and body["attached"] is True
    document = ResultDocument.objects.get(pk=body["id"])
    assert document.referral == referral
    assert document.run == LabRun.objects.get()
    assert document.pdf.read() == pdf("after")
    again = post_pdf(client, [dept], pdf("after"))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["id"] == body["id"]


def test_report_before_its_result_file_is_attached_when_the_run_arrives(
    client, dept, capture_callbacks
):
    referral = ivls_referral(dept, codes=("GLU",))
    response = post_pdf(client, [dept], pdf("before"))
    assert response.status_code == 201
    assert response.json()["attached"] is False
    document = ResultDocument.objects.get()
    assert document.referral is None and document.run is None
    post_and_process(client, [dept], referral_xml(referral), capture_callbacks)
    document.refresh_from_db()
    assert document.referral == referral
    assert document.run == LabRun.objects.get()


def test_report_of_an_unmatched_run_follows_it_when_a_person_attaches_it(
    client, dept, capture_callbacks
):
    post_and_process(client, [dept], result_xml(requisition=""), capture_callbacks)
    post_pdf(client, [dept], pdf())
    document = ResultDocument.objects.get()
    assert document.run is not None and document.referral is None
    referral = ivls_referral(dept, codes=("GLU",))
    run_attach(run=LabRun.objects.get(), referral=referral, attached_by=UserFactory())
    document.refresh_from_db()
    assert document.referral == referral
    body = status_of(client, [dept], InboundResultFile.objects.get().pk)
    assert body["status"] == "matched"


def test_report_only_considers_runs_of_the_authenticated_departments(client, db, capture_callbacks):
    mine = connected_department()
    theirs = connected_department(password="their-password-1")
    referral = ivls_referral(theirs, codes=("GLU",))
    with capture_callbacks(execute=True):
        client.post(
            RESULTS,
            data=referral_xml(referral),
            content_type="application/xml",
            **auth([theirs], "their-password-1"),
        )
    response = post_pdf(client, [mine], pdf())
    assert response.status_code == 201
    assert response.json()["attached"] is False
    assert ResultDocument.objects.get().referral is None


def test_report_multipart_and_errors(client, dept, settings):
    response = client.post(
        REPORTS,
        data={"file": SimpleUploadedFile("run-9.pdf", pdf("mp"), "application/pdf")},
        **auth([dept]),
    )
    assert response.status_code == 201
    assert ResultDocument.objects.get().diagnostic_set_id == "run-9"
    not_pdf = post_pdf(client, [dept], b"<html>no</html>")
    assert not_pdf.status_code == 422
    assert "PDF" in not_pdf.json()["error"]
    unnamed = client.post(REPORTS, data=pdf("x"), content_type="application/pdf", **auth([dept]))
    assert unnamed.status_code == 422
    settings.IVLS_MAX_PDF_BYTES = 1000
    big = post_pdf(client, [dept], pdf() + b" " * 1000)
    assert big.status_code == 413
    wrong_type = client.post(REPORTS, data=b"x", content_type="image/png", **auth([dept]))
    assert wrong_type.status_code == 415
    assert ResultDocument.objects.count() == 1


# --------------------------------------------------------------------------------------
# Processing, the sweep, failures
# --------------------------------------------------------------------------------------


def test_processing_twice_is_processing_once(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    stored = result_file_receive(departments=[dept], content=referral_xml(referral))
    first = result_file_process(result_file=stored)
    second = result_file_process(result_file=stored)
    assert first.status == second.status == InboundResultFile.STATUS_MATCHED
    assert second.attempts == 1
    assert Result.objects.count() == 1
    assert referral.lines.count() == 1


def test_transient_database_error_leaves_the_file_received(dept, monkeypatch):
    referral = ivls_referral(dept, codes=("GLU",))
    stored = result_file_receive(departments=[dept], content=referral_xml(referral))

    def flaky(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "run_record", flaky)
    after = result_file_process(result_file=stored)
    assert after.status == InboundResultFile.STATUS_RECEIVED
    assert after.attempts == 1
    assert "server closed the connection" in after.error
    assert not LabRun.objects.exists()
    monkeypatch.undo()
    done = result_file_process(result_file=stored)
    assert done.status == InboundResultFile.STATUS_MATCHED
    assert done.attempts == 2 and done.error == ""


def test_file_fails_after_max_attempts(dept, monkeypatch, settings):
    settings.IVLS_MAX_ATTEMPTS = 3
    settings.IVLS_SWEEP_GRACE_SECONDS = 0
    stored = result_file_receive(departments=[dept], content=result_xml())

    def broken(**kwargs):
        raise RuntimeError("matching bug")

    monkeypatch.setattr(services, "run_record", broken)
    for attempt in (1, 2):
        result_files_sweep.delay().get()
        stored.refresh_from_db()
        assert (stored.status, stored.attempts) == ("received", attempt)
    result_files_sweep.delay().get()
    stored.refresh_from_db()
    assert stored.status == InboundResultFile.STATUS_FAILED
    assert stored.attempts == 3
    assert "matching bug" in stored.error


def test_sweep_waits_for_the_grace_period(dept, settings):
    settings.IVLS_SWEEP_GRACE_SECONDS = 30
    stored = result_file_receive(departments=[dept], content=result_xml())
    assert result_files_sweep.delay().get() == 0
    InboundResultFile.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - timedelta(seconds=31)
    )
    assert result_files_sweep.delay().get() == 1
    stored.refresh_from_db()
    assert stored.status == InboundResultFile.STATUS_UNMATCHED


def test_sweep_reclaims_a_file_a_dead_worker_left_processing(dept, settings):
    settings.IVLS_SWEEP_GRACE_SECONDS = 0
    stored = result_file_receive(departments=[dept], content=result_xml())
    recent = timezone.now() - timedelta(seconds=10)
    InboundResultFile.objects.filter(pk=stored.pk).update(
        status="processing", attempts=1, claimed_at=recent
    )
    assert result_files_sweep.delay().get() == 0  # the worker may still be at it
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    InboundResultFile.objects.filter(pk=stored.pk).update(claimed_at=long_ago)
    assert result_files_sweep.delay().get() == 1
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (InboundResultFile.STATUS_UNMATCHED, 2)


def test_review_decisions_show_in_the_file_status(client, dept, capture_callbacks):
    response = post_and_process(client, [dept], result_xml(), capture_callbacks)
    file_id = response.json()["id"]
    run_dismiss(run=LabRun.objects.get(), reason="QC run", dismissed_by=UserFactory())
    body = status_of(client, [dept], file_id)
    assert body["status"] == "unmatched"
    assert "QC run" in body["detail"]


@pytest.fixture
def dead_broker():
    """Celery publishing to a port where nothing listens, as when Redis is down."""
    from pims.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.task_always_eager = False
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        reset_pools()


@pytest.mark.django_db(transaction=True)
def test_redis_down_post_is_still_201_quickly_and_the_sweep_matches_it(dead_broker, settings):
    department = connected_department()
    referral = ivls_referral(department, codes=("GLU",))
    client = Client()
    started = time.monotonic()
    response = post_xml(client, [department], referral_xml(referral))
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed < 4, f"publishing to a dead broker took {elapsed:.1f} s"
    stored = InboundResultFile.objects.get()
    assert stored.status == InboundResultFile.STATUS_RECEIVED
    # Polling and acknowledging need no Redis either.
    assert client.get(API + "work-requests/", **auth([department])).status_code == 200
    settings.IVLS_SWEEP_GRACE_SECONDS = 0
    assert services.result_files_sweep() == 1
    stored.refresh_from_db()
    assert stored.status == InboundResultFile.STATUS_MATCHED
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


@pytest.mark.worker
def test_a_real_worker_matches_a_posted_file(celery_worker_process):
    department = connected_department()
    referral = ivls_referral(department, codes=("GLU",))
    response = post_xml(Client(), [department], referral_xml(referral))
    assert response.status_code == 201
    wait_for(
        lambda: (
            InboundResultFile.objects.get(pk=response.json()["id"]).status
            == InboundResultFile.STATUS_MATCHED
        ),
        timeout=60,
    )
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE
    assert Result.objects.get(referral=referral).value_text == "117"
