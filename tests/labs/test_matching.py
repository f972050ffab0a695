"""Matching (labs.services.run_record) and the review queue (labs.services.review)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from billing.models import ConsultationLine, Item
from labs.models import LabRun, Referral, ReferralLine, Result, ResultDocument
from labs.rundata import RUN_REPLACE, RUN_RESTORE, AssayData, RunData
from labs.services import (
    referral_cancel,
    result_document_record,
    run_attach,
    run_dismiss,
    run_identity_confirm,
    run_record,
)
from pims.models import AuditEvent
from tests.factories import (
    DepartmentFactory,
    PatientFactory,
    UserFactory,
    ivls_item,
    lab_item,
)
from tests.integrations.helpers import ivls_referral, pdf


def run_for(referral, *assays, run_id="run-1", instrument="Catalyst_One", **kw) -> RunData:
    patient = referral.consultation.patient
    fields = {
        "requisition_number": str(referral.number),
        "patient_id": str(patient.pk),
        "patient_name": patient.name,
        "client_id": str(patient.client_id),
        **kw,
    }
    return RunData(
        run_id=run_id,
        instrument=instrument,
        assays=assays or (AssayData(code="GLU", value_text="117"),),
        **fields,
    )


def glu(value="117", **kw) -> AssayData:
    defaults = {"unit": "mg/dL", "low": Decimal("74"), "high": Decimal("143")}
    return AssayData(code="GLU", value_text=value, **{**defaults, **kw})


@pytest.fixture
def dept(db):
    return DepartmentFactory()


def lines_by_code(referral) -> dict[str, ReferralLine]:
    return {
        line.item.code: line for line in referral.lines.select_related("item", "consultation_line")
    }


# --------------------------------------------------------------------------------------
# Lines, items and charges
# --------------------------------------------------------------------------------------


def test_result_goes_on_the_line_with_that_code(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(departments=[dept], run=run_for(referral, glu()))
    assert run.review_state == LabRun.STATE_MATCHED
    assert run.referral == referral
    result = Result.objects.get(run=run)
    assert result.referral_line == referral.lines.get()
    assert (result.value_text, result.value_number, result.flag) == ("117", Decimal("117"), "N")
    assert referral.lines.count() == 1
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


def test_codes_compare_exactly(dept):
    referral = ivls_referral(dept, codes=("glu",))
    run_record(departments=[dept], run=run_for(referral, glu()))
    lines = lines_by_code(referral)
    assert set(lines) == {"glu", "GLU"}
    assert lines["GLU"].added_by_matching


def test_unknown_code_creates_zero_price_item(dept):
    referral = ivls_referral(dept, codes=("CHEM",))
    run_record(
        departments=[dept],
        run=run_for(referral, AssayData(code="BACc_LEFT", value_text="12", unit="U/L")),
    )
    item = Item.objects.get(code="BACc_LEFT")
    assert item.auto_created and item.kind == Item.KIND_LAB
    assert item.name == "BACc_LEFT" and item.price == Decimal("0.00")
    assert item.item_list == dept.item_list
    line = lines_by_code(referral)["BACc_LEFT"]
    assert line.added_by_matching
    assert line.consultation_line.unit_price == Decimal("0.00")
    assert line.consultation_line.consultation == referral.consultation


def test_department_item_with_the_code_is_charged_at_its_price(dept):
    lab_item(dept, "SDMA", price="42.50")
    referral = ivls_referral(dept, codes=("CHEM",))
    run_record(departments=[dept], run=run_for(referral, AssayData(code="SDMA", value_text="9")))
    charge = lines_by_code(referral)["SDMA"].consultation_line
    assert charge.unit_price == Decimal("42.50")
    assert not Item.objects.filter(auto_created=True).exists()


def test_item_yielded_by_an_ordering_line_is_zero_price(dept):
    lab_item(dept, "ALB", price="15.00")
    chem = ivls_item(dept, "CHEM17", yields=["ALB", "ALKP"], price="120.00")
    referral = ivls_referral(dept, items=[chem])
    run_record(
        departments=[dept],
        run=run_for(
            referral,
            AssayData(code="ALB", value_text="3.1"),
            AssayData(code="ALKP", value_text="80"),
        ),
    )
    lines = lines_by_code(referral)
    assert lines["ALB"].consultation_line.unit_price == Decimal("0.00")
    assert lines["ALKP"].consultation_line.unit_price == Decimal("0.00")
    assert lines["CHEM17"].consultation_line.unit_price == Decimal("120.00")
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


def test_referral_is_partial_while_a_line_waits(dept):
    items = [ivls_item(dept, "GLU"), lab_item(dept, "SMEAR", price="10.00")]
    referral = ivls_referral(dept, items=items)
    run_record(departments=[dept], run=run_for(referral, glu()))
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_PARTIAL


def test_department_without_item_list_sends_new_codes_to_review(dept):
    from pims.models import Department

    referral = ivls_referral(dept, codes=("GLU",))
    Department.objects.filter(pk=dept.pk).update(item_list=None)
    run = run_record(
        departments=[dept], run=run_for(referral, glu(), AssayData(code="NEW", value_text="1"))
    )
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    assert "item list" in run.review_reason
    only_known = run_record(departments=[dept], run=run_for(referral, glu(), run_id="run-2"))
    assert only_known.review_state == LabRun.STATE_MATCHED


def test_auto_created_item_is_reused_by_the_next_run(dept):
    first = ivls_referral(dept, codes=("CHEM",))
    second = ivls_referral(dept, codes=("CHEM",))
    run_record(departments=[dept], run=run_for(first, AssayData(code="NEW1", value_text="1")))
    run_record(
        departments=[dept],
        run=run_for(second, AssayData(code="NEW1", value_text="2"), run_id="run-2"),
    )
    assert Item.objects.filter(code="NEW1").count() == 1
    assert lines_by_code(second)["NEW1"].consultation_line.unit_price == Decimal("0.00")


# --------------------------------------------------------------------------------------
# Values, flags, times, notes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "flag"),
    [("10", "LL"), ("15", "L"), ("74", "N"), ("143", "N"), ("144", "H"), ("701", "HH")],
)
def test_flag_is_derived_from_the_range(dept, value, flag):
    referral = ivls_referral(dept, codes=("GLU",))
    run_record(
        departments=[dept],
        run=run_for(referral, glu(value, critical_low=Decimal("15"), critical_high=Decimal("700"))),
    )
    assert Result.objects.get().flag == flag


def test_text_values_are_kept_exactly_without_a_number_or_flag(dept):
    referral = ivls_referral(dept, codes=("PLT",))
    text = "100-150 K/uL (Mildly decreased)"
    run_record(
        departments=[dept],
        run=run_for(referral, AssayData(code="PLT", value_text=text, low=Decimal("1"))),
    )
    result = Result.objects.get()
    assert (result.value_text, result.value_number, result.flag) == (text, None, "")


def test_run_time_is_the_departments_wall_time_and_the_text_is_kept(db):
    dept = DepartmentFactory(time_zone="Asia/Taipei")
    referral = ivls_referral(dept, codes=("GLU",))
    wall = timezone.datetime(2026, 3, 2, 9, 14, 55)  # noqa: DTZ001 - naive, as InterLink sends it
    run = run_record(
        departments=[dept],
        run=run_for(referral, run_time=wall, run_time_text="03/02/2026 09:14:55.350 AM"),
    )
    run.refresh_from_db()
    assert run.run_time == timezone.datetime(2026, 3, 2, 1, 14, 55, tzinfo=dt.UTC)
    assert run.run_time_text == "03/02/2026 09:14:55.350 AM"


def test_notes_and_what_was_sent_are_kept_with_the_run(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(
        departments=[dept],
        run=run_for(
            referral,
            notes=("Platelet clumps.", "Review a film."),
            doctor_first_name="Anna",
            species="CANINE",
        ),
    )
    assert run.notes == "Platelet clumps.\n\nReview a film."
    assert run.sent["doctor"]["first_name"] == "Anna"
    assert run.sent["patient"]["species"] == "CANINE"
    assert run.sent["requisition_number"] == str(referral.number)


def test_run_record_writes_an_audit_event(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(departments=[dept], run=run_for(referral))
    event = AuditEvent.objects.get(action="labs.run_recorded")
    assert event.actor_type == AuditEvent.ACTOR_PLUGIN
    assert event.subject_id == str(run.pk)
    assert event.data["referral"] == referral.number


# --------------------------------------------------------------------------------------
# Where a run goes
# --------------------------------------------------------------------------------------


def test_no_referral_is_unmatched_in_each_departments_queue(db):
    first, second = DepartmentFactory(), DepartmentFactory()
    run = run_record(
        departments=[second, first],
        run=RunData(run_id="snap", instrument="SNAP", assays=(AssayData("FeLV", "Positive"),)),
    )
    assert run.review_state == LabRun.STATE_UNMATCHED
    assert run.referral is None
    assert run.unit_key == f"{first.pk},{second.pk}"
    assert set(run.departments.all()) == {first, second}
    assert Result.objects.get(run=run).referral is None


def test_number_of_a_referral_in_another_department_is_unmatched(db):
    mine, theirs = DepartmentFactory(), DepartmentFactory()
    referral = ivls_referral(theirs, codes=("GLU",))
    run = run_record(departments=[mine], run=run_for(referral))
    assert run.review_state == LabRun.STATE_UNMATCHED
    assert not Result.objects.filter(referral=referral).exists()


def test_cancelled_referral_needs_review(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    referral_cancel(referral=referral, reason="owner left")
    run = run_record(departments=[dept], run=run_for(referral))
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    assert "cancelled" in run.review_reason
    assert run.referral is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("patient_id", "999999", "patient id"),
        ("patient_name", "Rex", "patient"),
        ("client_id", "999999", "client id"),
        ("patient_id", "12a", "patient id"),
    ],
)
def test_identity_mismatch_needs_review(dept, field, value, words):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(departments=[dept], run=run_for(referral, **{field: value}))
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    assert words in run.review_reason
    assert not Result.objects.filter(referral=referral).exists()
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_QUEUED


@pytest.mark.parametrize("sent_name", ["  rosa ", "ROSA", "Ｒｏｓａ", "Rosa"])
def test_patient_names_compare_ignoring_case_spaces_and_compatibility_forms(db, sent_name):
    dept = DepartmentFactory()
    referral = ivls_referral(dept, codes=("GLU",), patient=PatientFactory(name="Rosa"))
    run = run_record(departments=[dept], run=run_for(referral, patient_name=sent_name))
    assert run.review_state == LabRun.STATE_MATCHED


def test_ids_with_leading_zeros_match(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    patient = referral.consultation.patient
    run = run_record(departments=[dept], run=run_for(referral, patient_id=f"000{patient.pk}"))
    assert run.review_state == LabRun.STATE_MATCHED


def test_a_run_naming_no_patient_is_attached_by_its_number(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(
        departments=[dept],
        run=run_for(referral, patient_id="", patient_name="", client_id=""),
    )
    assert run.review_state == LabRun.STATE_MATCHED


# --------------------------------------------------------------------------------------
# Revisions
# --------------------------------------------------------------------------------------


def test_corrected_run_adds_a_revision_and_keeps_the_old_one(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run_record(departments=[dept], run=run_for(referral, glu("117")))
    run = run_record(departments=[dept], run=run_for(referral, glu("150"), kind=RUN_REPLACE))
    assert run.revision_recorded and run.current_revision == 2
    assert LabRun.objects.count() == 1
    old, new = Result.objects.filter(run=run).order_by("revision")
    assert (old.revision, old.value_text, old.is_current) == (1, "117", False)
    assert (new.revision, new.value_text, new.is_current, new.flag) == (2, "150", True, "H")
    assert old.referral_line == new.referral_line
    assert referral.lines.count() == 1


def test_restore_is_a_revision_too(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run_record(departments=[dept], run=run_for(referral, glu("117")))
    run_record(departments=[dept], run=run_for(referral, glu("150"), kind=RUN_REPLACE))
    run = run_record(departments=[dept], run=run_for(referral, glu("117"), kind=RUN_RESTORE))
    assert run.current_revision == 3
    assert Result.objects.get(run=run, is_current=True).value_text == "117"


def test_identical_content_records_no_revision(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    run_record(departments=[dept], run=run_for(referral, glu()))
    again = run_record(departments=[dept], run=run_for(referral, glu()))
    assert again.revision_recorded is False
    assert again.current_revision == 1
    assert Result.objects.count() == 1


def test_same_run_id_on_another_instrument_or_unit_list_is_another_run(db):
    first, second = DepartmentFactory(), DepartmentFactory()
    plain = RunData(run_id="r", instrument="SNAP", assays=(AssayData("FeLV", "Positive"),))
    a = run_record(departments=[first], run=plain)
    b = run_record(
        departments=[first],
        run=RunData(run_id="r", instrument="ProCyte_Dx", assays=plain.assays),
    )
    c = run_record(departments=[first, second], run=plain)
    assert len({a.pk, b.pk, c.pk}) == 3


def test_correction_naming_another_referral_goes_to_review(dept):
    first = ivls_referral(dept, codes=("GLU",))
    second = ivls_referral(dept, codes=("GLU",), patient=first.consultation.patient)
    run_record(departments=[dept], run=run_for(first, glu("117")))
    run = run_record(
        departments=[dept],
        run=run_for(first, glu("120"), requisition_number=str(second.number), kind=RUN_REPLACE),
    )
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    assert run.referral is None
    assert not Result.objects.filter(referral=second).exists()


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------


def test_waiting_document_is_attached_when_its_run_arrives(dept):
    referral = ivls_referral(dept, codes=("GLU",))
    document = result_document_record(departments=[dept], content=pdf(), diagnostic_set_id="run-1")
    assert document.outcome == "accepted" and document.run is None
    other_department = DepartmentFactory()
    elsewhere = result_document_record(
        departments=[other_department], content=pdf("x"), diagnostic_set_id="run-1"
    )
    run = run_record(departments=[dept], run=run_for(referral))
    document.refresh_from_db()
    elsewhere.refresh_from_db()
    assert (document.run, document.referral) == (run, referral)
    assert (elsewhere.run, elsewhere.referral) == (None, None)
    again = result_document_record(departments=[dept], content=pdf(), diagnostic_set_id="run-1")
    assert again.outcome == "duplicate" and again.pk == document.pk
    assert ResultDocument.objects.count() == 2


# --------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------


def _in_threads(*calls):
    barrier = threading.Barrier(len(calls))
    errors = []

    def run(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def _state(referral) -> dict:
    referral.refresh_from_db()
    return {
        "status": referral.status,
        "lines": sorted(
            (line.item.code, line.added_by_matching, str(line.consultation_line.unit_price))
            for line in referral.lines.select_related("item", "consultation_line")
        ),
        "charges": ConsultationLine.objects.filter(consultation=referral.consultation).count(),
        "results": sorted(
            (r.code, r.value_text, r.revision, r.is_current, r.referral_line.item.code)
            for r in Result.objects.filter(referral=referral).select_related("referral_line__item")
        ),
        "items": sorted(
            Item.objects.filter(
                auto_created=True, item_list=referral.department.item_list
            ).values_list("code", flat=True)
        ),
        "runs": sorted(
            LabRun.objects.filter(referral=referral).values_list(
                "diagnostic_set_id", "current_revision"
            )
        ),
    }


def _two_files(referral):
    chem = run_for(
        referral,
        AssayData(code="GLU", value_text="117"),
        AssayData(code="NEWA", value_text="1"),
        AssayData(code="NEWB", value_text="2"),
        run_id="chem",
    )
    blood = run_for(
        referral,
        AssayData(code="HCT", value_text="45.2"),
        AssayData(code="NEWA", value_text="3"),
        AssayData(code="NEWB", value_text="4"),
        run_id="blood",
        instrument="ProCyte_Dx",
    )
    return chem, blood


@pytest.mark.django_db(transaction=True)
def test_two_files_for_one_referral_at_once_give_the_sequential_state():
    # Sequentially in one department ...
    one = DepartmentFactory()
    sequential = ivls_referral(one, codes=("GLU", "HCT"))
    for data in _two_files(sequential):
        run_record(departments=[one], run=data)
    expected = _state(sequential)
    # ... and at the same instant in another, set up the same way.
    other = DepartmentFactory()
    concurrent = ivls_referral(other, codes=("GLU", "HCT"))
    chem, blood = _two_files(concurrent)
    _in_threads(
        lambda: run_record(departments=[other], run=chem),
        lambda: run_record(departments=[other], run=blood),
    )
    got = _state(concurrent)
    assert got["status"] == expected["status"] == Referral.STATUS_COMPLETE
    assert got["items"] == expected["items"] == ["NEWA", "NEWB"]
    assert got["runs"] == expected["runs"]
    assert got["charges"] == expected["charges"]
    assert [r[:4] for r in got["results"]] == [r[:4] for r in expected["results"]]
    # Which file added NEWA's line first may differ; there is one line per code either way.
    assert got["lines"] == expected["lines"]


@pytest.mark.django_db(transaction=True)
def test_the_same_file_twice_at_once_records_one_revision():
    department = DepartmentFactory()
    referral = ivls_referral(department, codes=("GLU",))
    data = run_for(referral, glu())
    _in_threads(
        lambda: run_record(departments=[department], run=data),
        lambda: run_record(departments=[department], run=data),
    )
    run = LabRun.objects.get()
    assert run.current_revision == 1
    assert Result.objects.filter(run=run).count() == 1
    assert referral.lines.count() == 1


# --------------------------------------------------------------------------------------
# The review queue
# --------------------------------------------------------------------------------------


@pytest.fixture
def user(db):
    return UserFactory()


def test_attach_an_unmatched_run_runs_the_same_matching(dept, user):
    referral = ivls_referral(dept, codes=("GLU",))
    lab_item(dept, "SDMA", price="42.00")
    run = run_record(
        departments=[dept],
        run=RunData(
            run_id="x",
            instrument="Catalyst_One",
            assays=(glu(), AssayData(code="SDMA", value_text="9"), AssayData("ZZ", "1")),
        ),
    )
    assert run.review_state == LabRun.STATE_UNMATCHED
    attached = run_attach(run=run, referral=referral, attached_by=user)
    assert attached.review_state == LabRun.STATE_MATCHED
    assert attached.referral == referral and attached.decided_by == user
    lines = lines_by_code(referral)
    assert lines["SDMA"].consultation_line.unit_price == Decimal("42.00")
    assert lines["ZZ"].item.auto_created
    assert Result.objects.get(code="GLU").referral_line == lines["GLU"]
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE
    event = AuditEvent.objects.get(action="labs.run_attached")
    assert event.actor_user == user and event.data["referral"] == referral.number


def test_attach_refuses_an_identity_mismatch_unless_confirmed(dept, user):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(
        departments=[dept],
        run=RunData(run_id="x", instrument="SNAP", patient_name="Rex", assays=(glu(),)),
    )
    with pytest.raises(ValidationError, match="Rex"):
        run_attach(run=run, referral=referral, attached_by=user)
    run.refresh_from_db()
    assert run.review_state == LabRun.STATE_UNMATCHED and run.decided_by is None
    attached = run_attach(run=run, referral=referral, attached_by=user, identity_confirmed=True)
    assert attached.review_state == LabRun.STATE_MATCHED


def test_attach_only_to_a_referral_of_the_runs_departments(dept, user):
    other = ivls_referral(DepartmentFactory(), codes=("GLU",))
    run = run_record(departments=[dept], run=RunData(run_id="x", instrument="SNAP"))
    with pytest.raises(ValidationError, match="not posted for"):
        run_attach(run=run, referral=other, attached_by=user)


def test_attach_to_a_cancelled_referral_is_refused(dept, user):
    referral = ivls_referral(dept, codes=("GLU",))
    referral_cancel(referral=referral)
    run = run_record(departments=[dept], run=run_for(referral))
    with pytest.raises(ValidationError, match="cancelled"):
        run_attach(run=run, referral=referral, attached_by=user)


def test_identity_confirm_attaches_to_the_referral_its_number_names(dept, user):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(departments=[dept], run=run_for(referral, patient_name="Rex"))
    assert run.review_state == LabRun.STATE_NEEDS_REVIEW
    confirmed = run_identity_confirm(run=run, confirmed_by=user)
    assert confirmed.review_state == LabRun.STATE_MATCHED
    assert confirmed.referral == referral
    assert Result.objects.get().referral == referral
    assert AuditEvent.objects.filter(action="labs.run_identity_confirmed").count() == 1
    # Its corrections follow the person's decision.
    corrected = run_record(
        departments=[dept],
        run=run_for(referral, glu("150"), patient_name="Rex", kind=RUN_REPLACE),
    )
    assert corrected.review_state == LabRun.STATE_MATCHED and corrected.current_revision == 2


def test_identity_confirm_needs_a_referral_to_confirm(dept, user):
    run = run_record(departments=[dept], run=RunData(run_id="x", instrument="SNAP"))
    with pytest.raises(ValidationError):
        run_identity_confirm(run=run, confirmed_by=user)


def test_dismiss_needs_a_reason(dept, user):
    run = run_record(departments=[dept], run=RunData(run_id="x", instrument="SNAP"))
    with pytest.raises(ValidationError, match="why"):
        run_dismiss(run=run, reason="  ", dismissed_by=user)
    dismissed = run_dismiss(run=run, reason="QC run", dismissed_by=user)
    assert dismissed.review_state == LabRun.STATE_DISMISSED
    assert dismissed.review_reason == "QC run" and dismissed.decided_by == user
    assert AuditEvent.objects.get(action="labs.run_dismissed").data["reason"] == "QC run"


def test_first_decision_wins(dept, user):
    referral = ivls_referral(dept, codes=("GLU",))
    run = run_record(departments=[dept], run=RunData(run_id="x", instrument="SNAP"))
    stale = LabRun.objects.get(pk=run.pk)
    run_dismiss(run=run, reason="test strip", dismissed_by=user)
    with pytest.raises(ValidationError, match="already decided"):
        run_attach(run=stale, referral=referral, attached_by=UserFactory())
    with pytest.raises(ValidationError, match="already decided"):
        run_dismiss(run=stale, reason="again", dismissed_by=UserFactory())
    stale.refresh_from_db()
    assert stale.review_state == LabRun.STATE_DISMISSED and stale.decided_by == user


@pytest.mark.django_db(transaction=True)
def test_first_decision_wins_when_two_people_decide_at_once():
    department = DepartmentFactory()
    referral = ivls_referral(department, codes=("GLU",))
    run = run_record(
        departments=[department],
        run=RunData(run_id="x", instrument="SNAP", assays=(glu(),)),
    )
    outcomes = []

    def decide(call):
        def go():
            try:
                call()
                outcomes.append("won")
            except ValidationError:
                outcomes.append("lost")

        return go

    _in_threads(
        decide(lambda: run_attach(run=run, referral=referral, attached_by=UserFactory())),
        decide(lambda: run_dismiss(run=run, reason="QC", dismissed_by=UserFactory())),
    )
    assert sorted(outcomes) == ["lost", "won"]
    run.refresh_from_db()
    assert run.review_state in (LabRun.STATE_MATCHED, LabRun.STATE_DISMISSED)
    assert (run.review_state == LabRun.STATE_MATCHED) == Result.objects.filter(
        referral=referral
    ).exists()


def test_a_correction_after_dismissal_comes_back_for_review(dept, user):
    run = run_record(
        departments=[dept], run=RunData(run_id="x", instrument="SNAP", assays=(glu(),))
    )
    run_dismiss(run=run, reason="QC", dismissed_by=user)
    same = run_record(
        departments=[dept], run=RunData(run_id="x", instrument="SNAP", assays=(glu(),))
    )
    assert same.review_state == LabRun.STATE_DISMISSED and not same.revision_recorded
    changed = run_record(
        departments=[dept], run=RunData(run_id="x", instrument="SNAP", assays=(glu("5"),))
    )
    assert changed.review_state == LabRun.STATE_NEEDS_REVIEW
    assert changed.decided_by is None
