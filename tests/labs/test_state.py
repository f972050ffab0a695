"""The referral state machine: every status against every event, as DESIGN.md's table says."""

import datetime as dt

import pytest

from labs import state
from labs.models import Referral
from labs.services import referral_create, result_record
from pims.models import AuditEvent
from tests.factories import ConsultationFactory, DepartmentFactory, UserFactory, ivls_item

STATUSES = [value for value, _ in Referral.STATUSES]
EVENTS = [
    state.EVENT_ACKNOWLEDGED,
    state.EVENT_PARTIAL,
    state.EVENT_COMPLETE,
    state.EVENT_CANCELLED,
]

# DESIGN.md "Referral states", written out: (from, event) -> to. Anything absent is
# refused. A referral already partial that gets another partial result stays as it is.
ALLOWED = {
    ("queued", state.EVENT_ACKNOWLEDGED): "sent",
    ("open", state.EVENT_PARTIAL): "partial",
    ("queued", state.EVENT_PARTIAL): "partial",
    ("sent", state.EVENT_PARTIAL): "partial",
    ("open", state.EVENT_COMPLETE): "complete",
    ("queued", state.EVENT_COMPLETE): "complete",
    ("sent", state.EVENT_COMPLETE): "complete",
    ("partial", state.EVENT_COMPLETE): "complete",
    ("open", state.EVENT_CANCELLED): "cancelled",
    ("queued", state.EVENT_CANCELLED): "cancelled",
    ("sent", state.EVENT_CANCELLED): "cancelled",
}

LONG_AGO = dt.datetime(2026, 1, 5, 8, 30, tzinfo=dt.UTC)


def referral_in(status: str) -> Referral:
    consultation = ConsultationFactory()
    return Referral.objects.create(
        number=900000 + Referral.objects.count(),
        consultation=consultation,
        department=consultation.department,
        status=status,
        sends_to_ivls=True,
        status_changed_at=LONG_AGO,
    )


def test_the_table_covers_every_status_and_event():
    assert len(STATUSES) * len(EVENTS) == 24
    assert set(state.TRANSITIONS) == set(EVENTS)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("status", STATUSES)
def test_transition(db, status, event):
    referral = referral_in(status)
    user = UserFactory()
    target = ALLOWED.get((status, event))

    moved = state.referral_transition(
        referral=referral, event=event, actor_user=user, data={"why": "test"}
    )

    stored = Referral.objects.get(pk=referral.pk)
    events = list(AuditEvent.objects.filter(subject_id=str(referral.pk)))
    if target is None:
        assert moved is False
        assert stored.status == referral.status == status
        assert stored.status_changed_at == LONG_AGO
        assert events == []
    else:
        assert moved is True
        assert stored.status == referral.status == target
        assert stored.status_changed_at > LONG_AGO
        assert len(events) == 1
        (audit,) = events
        assert audit.action == f"referral.{event}"
        assert audit.subject_type == "labs.Referral"
        assert audit.actor_user == user
        assert audit.actor_type == AuditEvent.ACTOR_USER
        assert audit.department == referral.department
        assert audit.patient_id == referral.consultation.patient_id
        assert audit.data == {"from": status, "to": target, "why": "test"}


def test_cancel_writes_its_reason_in_the_same_update(db):
    referral = referral_in("queued")

    assert state.referral_transition(
        referral=referral, event=state.EVENT_CANCELLED, cancel_reason="Owner declined"
    )

    stored = Referral.objects.get(pk=referral.pk)
    assert (stored.status, stored.cancel_reason) == ("cancelled", "Owner declined")


def test_refused_cancel_does_not_write_its_reason(db):
    referral = referral_in("complete")

    assert not state.referral_transition(
        referral=referral, event=state.EVENT_CANCELLED, cancel_reason="Owner declined"
    )

    assert Referral.objects.get(pk=referral.pk).cancel_reason == ""


def test_acknowledgement_after_results_changes_nothing(db):
    consultation = ConsultationFactory()
    department = consultation.department
    vet = UserFactory()
    referral = referral_create(
        consultation=consultation,
        items=[ivls_item(department, "SDMA"), ivls_item(department, "CBC")],
    )
    result_record(line=referral.lines.first(), value="14", entered_by=vet)
    assert Referral.objects.get(pk=referral.pk).status == "partial"
    audit_count = AuditEvent.objects.count()

    moved = state.referral_transition(referral=referral, event=state.EVENT_ACKNOWLEDGED)

    assert moved is False
    assert Referral.objects.get(pk=referral.pk).status == "partial"
    assert AuditEvent.objects.count() == audit_count


def test_a_stale_copy_cannot_move_a_referral_its_new_status_forbids(db):
    department = DepartmentFactory()
    referral = referral_create(
        consultation=ConsultationFactory(department=department),
        items=[ivls_item(department, "SDMA")],
    )
    stale = Referral.objects.get(pk=referral.pk)
    assert state.referral_transition(referral=referral, event=state.EVENT_COMPLETE)

    # The copy still says queued; the conditional update looks at the row, not the copy.
    assert not state.referral_transition(referral=stale, event=state.EVENT_ACKNOWLEDGED)
    assert not state.referral_transition(referral=stale, event=state.EVENT_CANCELLED)

    assert Referral.objects.get(pk=referral.pk).status == "complete"
    assert stale.status == "complete"
