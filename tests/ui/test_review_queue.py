from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.ivls.models import (
    InboundResultFile,
    InboundResultFileDepartment,
)
from labs.models import LabRun, Referral
from labs.rundata import AssayData, RunData
from labs.services import referral_create, run_record
from tests.ui.conftest import member, signed_in


def waiting_run(department, run_id: str, *, number: str = "", patient_name: str = "Nameless"):
    return run_record(
        departments=[department],
        run=RunData(
            run_id=run_id,
            instrument="Catalyst_One",
            requisition_number=number,
            patient_id="",
            patient_name=patient_name,
            client_last_name="Sent-Owner",
            species="CANINE",
            assays=(
                AssayData("GLU", "117", Decimal("117"), "mg/dL", Decimal("74"), Decimal("143")),
                AssayData("BUN", "31", Decimal("31"), "mg/dL", Decimal("7"), Decimal("27")),
            ),
        ),
    )


@pytest.fixture
def referral(consultation, chem17, vet):
    order, _ = chem17
    return referral_create(consultation=consultation, items=[order], created_by=vet)


def queue(http) -> str:
    response = http.get(reverse("labs:review_queue"))
    assert response.status_code == 200
    return response.content.decode()


def test_queue_shows_what_each_run_contains(vet_client, department, referral):
    run = waiting_run(department, "R1", number=str(referral.number), patient_name="Bella")
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    loose = waiting_run(department, "R2")
    assert loose.review_state == LabRun.STATE_UNMATCHED
    html = queue(vet_client)
    assert "Catalyst_One" in html and "R1" in html and "R2" in html
    assert "Bella" in html and "Sent-Owner" in html
    assert "117" in html and "74–143" in html
    assert f"Referral {referral.number} in this practice" in html
    assert "Confirm and attach" in html


def test_other_departments_runs_are_not_listed(vet_client, other_department):
    waiting_run(other_department, "ELSEWHERE")
    assert "ELSEWHERE" not in queue(vet_client)


def test_queue_query_count_is_flat_in_the_number_of_runs(vet_client, department, referral):
    waiting_run(department, "FIRST", number=str(referral.number), patient_name="Bella")
    queue(vet_client)
    with CaptureQueriesContext(connection) as one:
        queue(vet_client)
    for index in range(19):
        waiting_run(department, f"MORE-{index}", number=str(referral.number), patient_name="X")
    with CaptureQueriesContext(connection) as twenty:
        html = queue(vet_client)
    assert html.count('class="card run"') == 20
    assert len(one) == len(twenty), (len(one), len(twenty))


def test_attach_by_typed_number_matches_the_run(vet_client, department, referral):
    run = waiting_run(department, "R3", patient_name="Rosa")
    response = vet_client.post(
        reverse("labs:run_attach", args=[run.pk]), {"referral": str(referral.number)}, follow=True
    )
    run.refresh_from_db()
    assert run.review_state == LabRun.STATE_MATCHED and run.referral == referral
    assert f"attached to referral {referral.number}" in response.content.decode()


def test_attach_by_choice_from_the_search(vet_client, department, referral):
    run = waiting_run(department, "R4")
    found = vet_client.get(
        reverse("labs:referral_search"), {"referral": "Rosa", "run": run.pk}
    ).content.decode()
    assert f'value="{referral.pk}"' in found
    response = vet_client.post(
        reverse("labs:run_attach", args=[run.pk]), {"choice": str(referral.pk)}, follow=True
    )
    assert "Identity check failed" in response.content.decode()
    run.refresh_from_db()
    assert run.referral is None
    vet_client.post(
        reverse("labs:run_attach", args=[run.pk]),
        {"choice": str(referral.pk), "identity_confirmed": "on"},
    )
    run.refresh_from_db()
    assert run.referral == referral


def test_identity_mismatch_is_confirmed_into_the_named_referral(vet_client, department, referral):
    run = waiting_run(department, "R5", number=str(referral.number), patient_name="Bella")
    vet_client.post(reverse("labs:run_confirm", args=[run.pk]))
    run.refresh_from_db()
    referral.refresh_from_db()
    assert run.review_state == LabRun.STATE_MATCHED
    assert referral.status in (Referral.STATUS_PARTIAL, Referral.STATUS_COMPLETE)


def test_dismiss_needs_a_reason_and_the_first_decision_wins(vet_client, department):
    run = waiting_run(department, "RUN-DISMISS-6")
    response = vet_client.post(reverse("labs:run_dismiss", args=[run.pk]), {}, follow=True)
    assert "Give a reason" in response.content.decode()
    vet_client.post(reverse("labs:run_dismiss", args=[run.pk]), {"reason": "QC run"})
    run.refresh_from_db()
    assert (run.review_state, run.review_reason) == (LabRun.STATE_DISMISSED, "QC run")
    response = vet_client.post(
        reverse("labs:run_dismiss", args=[run.pk]), {"reason": "again"}, follow=True
    )
    assert "already decided" in response.content.decode()
    run.refresh_from_db()
    assert run.review_reason == "QC run"
    assert "RUN-DISMISS-6" not in queue(vet_client)


def test_run_of_another_department_cannot_be_decided(department, other_department):
    run = waiting_run(other_department, "R7")
    outsider = signed_in(member(department, username="vet-z"))
    assert (
        outsider.post(reverse("labs:run_dismiss", args=[run.pk]), {"reason": "x"}).status_code
        == 404
    )
    run.refresh_from_db()
    assert run.review_state == LabRun.STATE_UNMATCHED


def test_failed_result_files_of_the_department_are_listed(vet_client, department, other_department):
    mine = InboundResultFile.objects.create(
        sha256="1" * 64,
        file_name="broken.xml",
        unit_key=str(department.pk),
        status=InboundResultFile.STATUS_FAILED,
        error="database went away",
        attempts=5,
    )
    InboundResultFileDepartment.objects.create(
        result_file=mine, department=department, sha256=mine.sha256
    )
    theirs = InboundResultFile.objects.create(
        sha256="2" * 64,
        file_name="theirs.xml",
        unit_key=str(other_department.pk),
        status=InboundResultFile.STATUS_FAILED,
    )
    InboundResultFileDepartment.objects.create(
        result_file=theirs, department=other_department, sha256=theirs.sha256
    )
    assert reverse("ivls_failed_files") in queue(vet_client)
    html = vet_client.get(reverse("ivls_failed_files")).content.decode()
    assert "broken.xml" in html and "database went away" in html
    assert "theirs.xml" not in html
