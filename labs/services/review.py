"""The review queue: runs that matching could not attach safely wait for a person.

Three decisions: attach the run to a referral, confirm the identity of a run whose patient
did not match the referral its number names, or dismiss it with a reason. The first decision
wins: each claims the run with a conditional UPDATE on its review state, so a second person
(or a second click) gets a clear "already decided" instead of a second effect.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labs import state
from labs.models import LabRun, Referral
from labs.services.matching import (
    OPEN_STATES,
    lock_run_identity,
    locked_referral,
    run_attach_locked,
)
from pims.services import audit_event_write


def _already_decided(run: LabRun) -> ValidationError:
    current = LabRun.objects.filter(pk=run.pk).values_list("review_state", flat=True).first()
    return ValidationError(
        f"This run was already decided (it is now {current or 'gone'}); reload the review "
        "queue to see the decision."
    )


def _claim(run: LabRun, *, user, **fields) -> LabRun:
    """Take the decision for ``user`` if no one has yet; the caller holds the referral lock."""
    lock_run_identity(run.diagnostic_set_id)
    claimed = LabRun.objects.filter(pk=run.pk, review_state__in=OPEN_STATES).update(
        decided_by=user, decided_at=timezone.now(), **fields
    )
    if not claimed:
        raise _already_decided(run)
    return LabRun.objects.select_for_update().get(pk=run.pk)


def _attach(*, run: LabRun, referral: Referral, user, identity_confirmed: bool, action: str):
    if run.review_state not in OPEN_STATES:
        raise _already_decided(run)
    # Lock order: referral, then run, then lines (as in matching).
    referral = locked_referral(referral.pk)
    if not run.departments.filter(pk=referral.department_id).exists():
        raise ValidationError(
            f"Referral {referral.number} belongs to {referral.department.name}, which this run "
            "was not posted for."
        )
    if referral.status == state.CANCELLED:
        raise ValidationError(f"Referral {referral.number} is cancelled.")
    lab_run = _claim(run, user=user)
    previous = run.review_state
    run_attach_locked(
        lab_run=lab_run,
        referral=referral,
        identity_confirmed=identity_confirmed,
        actor_user=user,
    )
    audit_event_write(
        action=action,
        department=referral.department,
        actor_user=user,
        subject=lab_run,
        patient_id=referral.consultation.patient_id,
        data={
            "referral": referral.number,
            "from": previous,
            "diagnostic_set_id": lab_run.diagnostic_set_id,
            "identity_confirmed": identity_confirmed,
        },
    )
    return lab_run


@transaction.atomic
def run_attach(
    *, run: LabRun, referral: Referral, attached_by, identity_confirmed: bool = False
) -> LabRun:
    """Attach a waiting run to a referral of one of the departments it was posted for.

    Runs the same matching code as the plug-in path. A patient who differs from the
    referral's is still refused unless the person confirms it (``identity_confirmed``).
    """
    return _attach(
        run=run,
        referral=referral,
        user=attached_by,
        identity_confirmed=identity_confirmed,
        action="labs.run_attached",
    )


@transaction.atomic
def run_identity_confirm(*, run: LabRun, confirmed_by) -> LabRun:
    """A person confirms that a run whose identity check failed belongs to the referral its
    requisition number names; the run is attached there."""
    if run.review_state != LabRun.STATE_NEEDS_REVIEW:
        if run.review_state not in OPEN_STATES:
            raise _already_decided(run)
        raise ValidationError("Only a run waiting for review has an identity to confirm.")
    number = run.requisition_number
    referral = (
        Referral.objects.filter(
            number=int(number), department__in=run.departments.values("pk")
        ).first()
        if number.isdigit()
        else None
    )
    if referral is None:
        raise ValidationError(
            f"No referral {number or '(no number)'} in this run's departments: attach it to a "
            "referral instead."
        )
    return _attach(
        run=run,
        referral=referral,
        user=confirmed_by,
        identity_confirmed=True,
        action="labs.run_identity_confirmed",
    )


@transaction.atomic
def run_dismiss(*, run: LabRun, reason: str, dismissed_by) -> LabRun:
    """Dismiss a waiting run (a QC run, a test, someone else's patient). A reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why the run is dismissed.")
    previous = run.review_state
    lab_run = _claim(
        run,
        user=dismissed_by,
        review_state=LabRun.STATE_DISMISSED,
        review_reason=reason[:300],
    )
    audit_event_write(
        action="labs.run_dismissed",
        department=lab_run.departments.order_by("pk").first(),
        actor_user=dismissed_by,
        subject=lab_run,
        data={
            "reason": reason,
            "from": previous,
            "diagnostic_set_id": lab_run.diagnostic_set_id,
        },
    )
    return lab_run
