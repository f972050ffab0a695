"""Ordering lab work: referral_create, cancel, line removal, hand-entered results and the
done-lines rule, on real PostgreSQL."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from billing.models import ConsultationLine
from integrations.ivls.interlink import parse_work_request
from integrations.ivls.models import WorkRequest
from labs import state
from labs.models import LabRun, Referral, ReferralLine, Result
from labs.selectors import referral_done_lines
from labs.services import (
    referral_cancel,
    referral_create,
    referral_line_remove,
    referral_progress_update,
    result_record,
)
from labs.services.referrals import NUMBER_SEQUENCE
from pims.models import AuditEvent
from tests.factories import (
    ConsultationFactory,
    DepartmentFactory,
    LabPanelFactory,
    UserFactory,
    VatRateFactory,
    department_item_list,
    ivls_item,
    lab_item,
)

CHEM_YIELDS = ("ALB", "ALKP", "ALT", "GLU")


@pytest.fixture
def department(db):
    return DepartmentFactory()


@pytest.fixture
def consultation(department):
    return ConsultationFactory(department=department)


@pytest.fixture
def vet(db):
    return UserFactory()


def work_requests(referral) -> list[tuple[str, tuple[str, ...]]]:
    """(action, service codes) of the referral's work requests, oldest first."""
    return [
        (wr.action, parse_work_request(wr.xml).service_codes)
        for wr in WorkRequest.objects.filter(referral=referral).order_by("id")
    ]


def status_of(referral) -> str:
    return Referral.objects.values_list("status", flat=True).get(pk=referral.pk)


def matched_run(referral, *, results=(), review_state=LabRun.STATE_MATCHED, run_id="R1") -> LabRun:
    """A run attached to the referral, with (code, value) results, as matching leaves it."""
    run = LabRun.objects.create(
        unit_key=str(referral.department_id),
        referral=referral,
        instrument="Catalyst One",
        diagnostic_set_id=run_id,
        review_state=review_state,
        current_revision=1,
    )
    run.departments.add(referral.department)
    for code, value in results:
        Result.objects.create(run=run, revision=1, referral=referral, code=code, value_text=value)
    return run


# --------------------------------------------------------------------------------------
# Creating referrals
# --------------------------------------------------------------------------------------


def test_panel_items_become_lines_and_an_item_in_both_a_pick_and_a_panel_appears_once(
    department, consultation, vet
):
    glucose = lab_item(department, "GLU-H", price="12.00")
    urine = lab_item(department, "UA", price="18.00")
    cytology = lab_item(department, "CYTO", price="45.00")
    panel = LabPanelFactory(
        item_list=department_item_list(department), items=[glucose, urine, cytology]
    )

    referral = referral_create(
        consultation=consultation, items=[urine], panels=[panel], created_by=vet
    )

    codes = [line.item.code for line in referral.lines.order_by("id")]
    assert sorted(codes) == ["CYTO", "GLU-H", "UA"]
    assert codes[0] == "UA"  # the explicit pick first, then the panel's other items
    charged = ConsultationLine.objects.filter(consultation=consultation)
    assert sorted(charged.values_list("description", flat=True)) == sorted(
        [glucose.name, urine.name, cytology.name]
    )


def test_each_line_is_charged_with_price_and_vat_as_of_ordering(department, consultation):
    vat = VatRateFactory(rate=Decimal("25.50"))
    cytology = lab_item(department, "CYTO", price="45.00", vat_rate=vat)

    referral = referral_create(consultation=consultation, items=[cytology])

    cytology.price = Decimal("99.00")
    cytology.save()
    vat.rate = Decimal("14.00")
    vat.save()
    charge = ConsultationLine.objects.get(referral_line__referral=referral)
    assert charge.item == cytology
    assert charge.consultation == consultation
    assert charge.unit_price == Decimal("45.00")
    assert charge.vat_rate == Decimal("25.50")
    assert charge.quantity == Decimal("1")


def test_referral_with_an_ivls_line_is_queued_with_one_new_work_request(department, consultation):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    cytology = lab_item(department, "CYTO")

    referral = referral_create(consultation=consultation, items=[chem, cytology])

    assert status_of(referral) == Referral.STATUS_QUEUED
    assert referral.sends_to_ivls is True
    # Only IVLS analyses go to the analyser.
    assert work_requests(referral) == [("New", ("CHEM17",))]
    request = WorkRequest.objects.get(referral=referral)
    assert request.department == department
    assert request.delivered_at is None


def test_referral_without_an_ivls_line_is_open_with_no_work_request(department, consultation):
    cytology = lab_item(department, "CYTO")

    referral = referral_create(consultation=consultation, items=[cytology])

    assert status_of(referral) == Referral.STATUS_OPEN
    assert referral.sends_to_ivls is False
    assert work_requests(referral) == []


def test_referral_numbers_are_digits_from_100001_and_increase(department, consultation):
    item = lab_item(department, "CYTO")

    numbers = [referral_create(consultation=consultation, items=[item]).number for _ in range(3)]

    assert all(str(n).isdigit() and n >= 100001 for n in numbers)
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT start_value FROM pg_sequences WHERE sequencename = %s", [NUMBER_SEQUENCE]
        )
        assert cursor.fetchone() == (100001,)


def test_referral_needs_at_least_one_item(consultation):
    with pytest.raises(ValidationError, match="at least one"):
        referral_create(consultation=consultation)
    assert not Referral.objects.exists()


def test_item_of_another_item_list_is_refused_and_nothing_is_written(department, consultation):
    other = DepartmentFactory()
    foreign = ivls_item(other, "CHEM17")

    with pytest.raises(ValidationError, match="not in this department's item list"):
        referral_create(consultation=consultation, items=[foreign])
    assert not Referral.objects.exists()
    assert not ConsultationLine.objects.exists()
    assert not WorkRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_keeps_numbers_unique():
    department = DepartmentFactory()
    item = ivls_item(department, "SDMA")
    consultations = [ConsultationFactory(department=department) for _ in range(8)]
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(consultations))

    def order(consultation):
        try:
            start.wait()
            for _ in range(5):
                referral = referral_create(consultation=consultation, items=[item])
                with lock:
                    numbers.append(referral.number)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=order, args=(c,)) for c in consultations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(numbers) == 40
    assert len(set(numbers)) == 40
    assert Referral.objects.count() == 40
    assert WorkRequest.objects.filter(action="New").count() == 40


# --------------------------------------------------------------------------------------
# Cancelling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("acknowledged", [False, True], ids=["queued", "sent"])
def test_cancelling_an_ivls_referral_queues_a_cancel(department, consultation, vet, acknowledged):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    sdma = ivls_item(department, "SDMA")
    referral = referral_create(consultation=consultation, items=[chem, sdma])
    if acknowledged:
        WorkRequest.objects.filter(referral=referral).update(delivered_at="2026-01-05T10:00Z")
        assert state.referral_transition(referral=referral, event=state.EVENT_ACKNOWLEDGED)
        assert status_of(referral) == Referral.STATUS_SENT

    referral_cancel(referral=referral, reason="Owner declined", cancelled_by=vet)

    assert status_of(referral) == Referral.STATUS_CANCELLED
    assert Referral.objects.get(pk=referral.pk).cancel_reason == "Owner declined"
    assert work_requests(referral) == [("New", ("CHEM17", "SDMA")), ("Cancel", ("CHEM17", "SDMA"))]
    cancel = parse_work_request(WorkRequest.objects.get(referral=referral, action="Cancel").xml)
    assert cancel.action == "Cancel"
    assert cancel.requisition_number == str(referral.number)
    assert cancel.patient_id == str(consultation.patient_id)
    event = AuditEvent.objects.get(action="referral.cancelled")
    assert event.actor_user == vet
    assert event.data["reason"] == "Owner declined"


def test_cancelling_an_open_referral_queues_nothing(department, consultation):
    referral = referral_create(consultation=consultation, items=[lab_item(department, "CYTO")])

    referral_cancel(referral=referral)

    assert status_of(referral) == Referral.STATUS_CANCELLED
    assert work_requests(referral) == []


def test_cancel_after_results_is_refused_and_queues_no_cancel(department, consultation, vet):
    sdma = ivls_item(department, "SDMA")
    cytology = lab_item(department, "CYTO")
    referral = referral_create(consultation=consultation, items=[sdma, cytology])
    result_record(line=referral.lines.get(item=cytology), value="Benign", entered_by=vet)
    before = status_of(referral)

    with pytest.raises(ValidationError, match="already has results"):
        referral_cancel(referral=referral, reason="too late")

    assert status_of(referral) == before == Referral.STATUS_PARTIAL
    assert work_requests(referral) == [("New", ("SDMA",))]


def test_cancel_after_a_matched_run_is_refused(department, consultation):
    sdma = ivls_item(department, "SDMA")
    referral = referral_create(consultation=consultation, items=[sdma])
    matched_run(referral, results=[("SDMA", "12")])

    with pytest.raises(ValidationError, match="already has results"):
        referral_cancel(referral=referral)

    assert status_of(referral) == Referral.STATUS_QUEUED
    assert [action for action, _ in work_requests(referral)] == ["New"]


def test_cancelling_twice_is_refused_with_a_clear_error(department, consultation):
    referral = referral_create(consultation=consultation, items=[ivls_item(department, "SDMA")])
    referral_cancel(referral=referral)

    with pytest.raises(ValidationError, match="cancelled: not cancellable"):
        referral_cancel(referral=referral)

    assert [action for action, _ in work_requests(referral)] == ["New", "Cancel"]


# --------------------------------------------------------------------------------------
# Removing lines
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("acknowledged", [False, True], ids=["queued", "sent"])
def test_removing_an_ivls_line_queues_cancel_then_new_with_the_remaining_codes(
    department, consultation, vet, acknowledged
):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    sdma = ivls_item(department, "SDMA")
    cbc = ivls_item(department, "CBC")
    referral = referral_create(consultation=consultation, items=[chem, sdma, cbc])
    if acknowledged:
        WorkRequest.objects.filter(referral=referral).update(delivered_at="2026-01-05T10:00Z")
        state.referral_transition(referral=referral, event=state.EVENT_ACKNOWLEDGED)
    line = referral.lines.get(item=sdma)

    referral_line_remove(line=line, removed_by=vet)

    assert work_requests(referral) == [
        ("New", ("CHEM17", "SDMA", "CBC")),
        ("Cancel", ("CHEM17", "SDMA", "CBC")),
        ("New", ("CHEM17", "CBC")),
    ]
    assert [line.item.code for line in referral.lines.all()] == ["CHEM17", "CBC"]
    # The charge goes with the line.
    assert sorted(
        ConsultationLine.objects.filter(consultation=consultation).values_list(
            "item__code", flat=True
        )
    ) == ["CBC", "CHEM17"]
    assert status_of(referral) == (Referral.STATUS_SENT if acknowledged else Referral.STATUS_QUEUED)


def test_removing_a_non_ivls_line_queues_nothing(department, consultation):
    sdma = ivls_item(department, "SDMA")
    cytology = lab_item(department, "CYTO")
    referral = referral_create(consultation=consultation, items=[sdma, cytology])

    referral_line_remove(line=referral.lines.get(item=cytology))

    assert work_requests(referral) == [("New", ("SDMA",))]
    assert [line.item.code for line in referral.lines.all()] == ["SDMA"]
    assert not ConsultationLine.objects.filter(item=cytology).exists()


def test_removing_a_line_with_a_result_is_refused(department, consultation, vet):
    cytology = lab_item(department, "CYTO", price="45.00")
    urine = lab_item(department, "UA")
    referral = referral_create(consultation=consultation, items=[cytology, urine])
    line = referral.lines.get(item=cytology)
    result_record(line=line, value="Benign", entered_by=vet)

    with pytest.raises(ValidationError, match="has results"):
        referral_line_remove(line=line)

    assert ReferralLine.objects.filter(pk=line.pk).exists()
    assert ConsultationLine.objects.filter(item=cytology, unit_price=Decimal("45.00")).exists()


def test_removing_an_ordering_line_whose_analytes_have_results_is_refused(department, consultation):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS, price="89.00")
    cytology = lab_item(department, "CYTO")
    referral = referral_create(consultation=consultation, items=[chem, cytology])
    matched_run(referral, results=[("ALB", "3.1"), ("GLU", "5.4")])
    referral_progress_update(referral=referral)
    assert status_of(referral) == Referral.STATUS_PARTIAL
    line = referral.lines.get(item=chem)

    # The Chem 17 carries the charge for the analytes it produced.
    with pytest.raises(ValidationError, match="has results"):
        referral_line_remove(line=line)

    assert ConsultationLine.objects.filter(item=chem, unit_price=Decimal("89.00")).exists()
    assert [action for action, _ in work_requests(referral)] == ["New"]


def test_removing_every_ivls_line_cancels_once(department, consultation):
    sdma = ivls_item(department, "SDMA")
    cytology = lab_item(department, "CYTO")
    referral = referral_create(consultation=consultation, items=[sdma, cytology])

    referral_line_remove(line=referral.lines.get(item=sdma))
    referral_cancel(referral=referral)

    # The analyser was already told to cancel; a second Cancel would name nothing.
    assert work_requests(referral) == [("New", ("SDMA",)), ("Cancel", ("SDMA",))]
    assert status_of(referral) == Referral.STATUS_CANCELLED


def test_removing_the_last_line_cancels_the_referral(department, consultation):
    sdma = ivls_item(department, "SDMA")
    referral = referral_create(consultation=consultation, items=[sdma])

    referral_line_remove(line=referral.lines.get())

    assert status_of(referral) == Referral.STATUS_CANCELLED
    assert work_requests(referral) == [("New", ("SDMA",)), ("Cancel", ("SDMA",))]
    assert not ConsultationLine.objects.filter(consultation=consultation).exists()


# --------------------------------------------------------------------------------------
# The done-lines rule
# --------------------------------------------------------------------------------------


def test_ordering_line_is_done_when_any_of_its_yields_has_a_result(department, consultation):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    referral = referral_create(consultation=consultation, items=[chem])
    matched_run(referral, results=[("ALT", "45")])

    referral_progress_update(referral=referral)

    assert referral_done_lines(referral) == (1, 1)
    assert status_of(referral) == Referral.STATUS_COMPLETE


def test_ordering_line_is_not_done_by_results_outside_its_yields(department, consultation):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    cbc = ivls_item(department, "CBC", yields=("HCT", "WBC"))
    referral = referral_create(consultation=consultation, items=[chem, cbc])
    matched_run(referral, results=[("HCT", "45"), ("WBC", "9.1")])

    referral_progress_update(referral=referral)

    assert referral_done_lines(referral) == (1, 2)
    assert status_of(referral) == Referral.STATUS_PARTIAL


def test_superseded_results_do_not_make_a_line_done(department, consultation):
    chem = ivls_item(department, "CHEM17", yields=CHEM_YIELDS)
    referral = referral_create(consultation=consultation, items=[chem])
    run = matched_run(referral)
    Result.objects.create(
        run=run, revision=1, referral=referral, code="ALB", value_text="3", is_current=False
    )

    assert referral_done_lines(referral) == (0, 1)


def test_ivls_line_without_yields_is_done_once_a_run_is_matched(department, consultation):
    sdma = ivls_item(department, "SDMA")
    referral = referral_create(consultation=consultation, items=[sdma])
    assert referral_done_lines(referral) == (0, 1)

    matched_run(referral)
    referral_progress_update(referral=referral)

    assert referral_done_lines(referral) == (1, 1)
    assert status_of(referral) == Referral.STATUS_COMPLETE


def test_a_run_waiting_for_review_does_not_make_an_ivls_line_done(department, consultation):
    sdma = ivls_item(department, "SDMA")
    referral = referral_create(consultation=consultation, items=[sdma])

    matched_run(referral, review_state=LabRun.STATE_NEEDS_REVIEW)

    assert referral_done_lines(referral) == (0, 1)


def test_non_ivls_line_needs_its_own_result(department, consultation, vet):
    sdma = ivls_item(department, "SDMA")
    cytology = lab_item(department, "CYTO")
    referral = referral_create(consultation=consultation, items=[sdma, cytology])

    matched_run(referral)
    referral_progress_update(referral=referral)
    assert referral_done_lines(referral) == (1, 2)
    assert status_of(referral) == Referral.STATUS_PARTIAL

    result_record(line=referral.lines.get(item=cytology), value="Benign", entered_by=vet)

    assert referral_done_lines(referral) == (2, 2)
    assert status_of(referral) == Referral.STATUS_COMPLETE


def test_hand_entered_results_move_an_open_referral_to_partial_then_complete(
    department, consultation, vet
):
    cytology = lab_item(department, "CYTO")
    urine = lab_item(department, "USG", unit="")
    referral = referral_create(consultation=consultation, items=[cytology, urine])
    assert status_of(referral) == Referral.STATUS_OPEN

    result_record(line=referral.lines.get(item=cytology), value="Benign", entered_by=vet)
    assert status_of(referral) == Referral.STATUS_PARTIAL

    result_record(line=referral.lines.get(item=urine), value="1.035", entered_by=vet)
    assert status_of(referral) == Referral.STATUS_COMPLETE
    moves = AuditEvent.objects.filter(
        action__in=["referral.results_partial", "referral.results_complete"]
    )
    assert sorted((e.data["from"], e.data["to"]) for e in moves) == [
        ("open", "partial"),
        ("partial", "complete"),
    ]


def test_removing_the_last_undone_line_completes_a_partial_referral(department, consultation, vet):
    cytology = lab_item(department, "CYTO")
    urine = lab_item(department, "UA")
    referral = referral_create(consultation=consultation, items=[cytology, urine])
    result_record(line=referral.lines.get(item=cytology), value="Benign", entered_by=vet)

    referral_line_remove(line=referral.lines.get(item=urine))

    assert status_of(referral) == Referral.STATUS_COMPLETE


# --------------------------------------------------------------------------------------
# Results entered by hand
# --------------------------------------------------------------------------------------


def test_hand_entered_result_keeps_value_unit_range_and_flag(department, consultation, vet):
    glucose = lab_item(department, "GLU-H", unit="mmol/L")
    referral = referral_create(consultation=consultation, items=[glucose])

    result = result_record(
        line=referral.lines.get(),
        value=" 9.8 ",
        low=Decimal("3.9"),
        high=Decimal("7.8"),
        entered_by=vet,
    )

    result.refresh_from_db()
    assert (result.value_text, result.value_number, result.unit) == (
        "9.8",
        Decimal("9.8"),
        "mmol/L",
    )
    assert (result.low, result.high, result.flag) == (Decimal("3.9"), Decimal("7.8"), "H")
    assert result.code == "GLU-H"
    assert result.entered_by == vet
    assert result.referral == referral


def test_corrected_hand_entry_keeps_the_first_as_history(department, consultation, vet):
    glucose = lab_item(department, "GLU-H", unit="mmol/L")
    referral = referral_create(consultation=consultation, items=[glucose])
    line = referral.lines.get()

    first = result_record(line=line, value="98", entered_by=vet)
    second = result_record(line=line, value="9.8", entered_by=vet)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.value_text, first.is_current, first.revision) == ("98", False, 1)
    assert (second.value_text, second.is_current, second.revision) == ("9.8", True, 2)
    assert list(line.results.filter(is_current=True)) == [second]
    assert status_of(referral) == Referral.STATUS_COMPLETE


def test_empty_hand_entry_is_refused(department, consultation, vet):
    referral = referral_create(consultation=consultation, items=[lab_item(department, "CYTO")])

    with pytest.raises(ValidationError, match="Enter a result"):
        result_record(line=referral.lines.get(), value="   ", entered_by=vet)

    assert not Result.objects.exists()
    assert status_of(referral) == Referral.STATUS_OPEN


def test_result_on_a_cancelled_referral_is_refused(department, consultation, vet):
    referral = referral_create(consultation=consultation, items=[lab_item(department, "CYTO")])
    line = referral.lines.get()
    referral_cancel(referral=referral)

    with pytest.raises(ValidationError, match="cancelled"):
        result_record(line=line, value="Benign", entered_by=vet)

    assert not Result.objects.exists()
