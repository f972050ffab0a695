"""The referral state machine: the one place that assigns Referral.status.

Each event names the states it may leave from; applying it is one conditional UPDATE
(``... WHERE status IN (sources)``), so a racing plug-in and person cannot both move a
referral, and an event that does not apply changes nothing.
"""

from dataclasses import dataclass

from django.utils import timezone

from labs.models import Referral
from pims.services import audit_event_write

OPEN = Referral.STATUS_OPEN
QUEUED = Referral.STATUS_QUEUED
SENT = Referral.STATUS_SENT
PARTIAL = Referral.STATUS_PARTIAL
COMPLETE = Referral.STATUS_COMPLETE
CANCELLED = Referral.STATUS_CANCELLED

EVENT_ACKNOWLEDGED = "acknowledged"
EVENT_PARTIAL = "results_partial"
EVENT_COMPLETE = "results_complete"
EVENT_CANCELLED = "cancelled"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


TRANSITIONS: dict[str, Transition] = {
    # The plug-in acknowledged the New work request. After results it changes nothing.
    EVENT_ACKNOWLEDGED: Transition(frozenset({QUEUED}), SENT),
    # A run was matched or a result entered; the done-lines rule picks partial or complete.
    EVENT_PARTIAL: Transition(frozenset({OPEN, QUEUED, SENT, PARTIAL}), PARTIAL),
    EVENT_COMPLETE: Transition(frozenset({OPEN, QUEUED, SENT, PARTIAL}), COMPLETE),
    # Only before any result.
    EVENT_CANCELLED: Transition(frozenset({OPEN, QUEUED, SENT}), CANCELLED),
}


def referral_initial_status(*, sends_to_ivls: bool) -> str:
    """A new referral with an IVLS line is queued (its New work request is written with it)."""
    return QUEUED if sends_to_ivls else OPEN


def referral_transition(
    *,
    referral: Referral,
    event: str,
    actor_user=None,
    actor_type: str | None = None,
    data: dict | None = None,
    **fields,
) -> bool:
    """Apply an event. Returns True when the referral moved; refreshes ``referral.status``.

    Extra ``fields`` (e.g. cancel_reason) are written in the same UPDATE.
    """
    transition = TRANSITIONS[event]
    now = timezone.now()
    # A partial referral that gets another partial result stays as it is: no update, so its
    # status_changed_at and audit trail say when it became partial, not the latest result.
    updated = (
        Referral.objects.filter(pk=referral.pk, status__in=transition.sources)
        .exclude(status=transition.target)
        .update(status=transition.target, status_changed_at=now, **fields)
    )
    previous = referral.status
    referral.refresh_from_db(fields=["status", "status_changed_at", *fields.keys()])
    if updated and previous != referral.status:
        kwargs = {"actor_type": actor_type} if actor_type else {}
        audit_event_write(
            action=f"referral.{event}",
            department=referral.department,
            actor_user=actor_user,
            subject=referral,
            patient_id=referral.consultation.patient_id,
            data={"from": previous, "to": referral.status, **(data or {})},
            **kwargs,
        )
    return bool(updated)
