"""Ordering lab work: referrals, their lines and results entered by hand."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F

from billing.models import Item
from billing.selectors import item_list_for_department
from billing.services import consultation_line_add
from labs import state
from labs.flags import number_from_text, result_flag
from labs.models import (
    LabPanel,
    LabRun,
    Referral,
    ReferralLine,
    ReferralNumberCounter,
    Result,
)
from labs.transports import ROUTE_IVLS, transport_for
from patients.models import Consultation
from pims.services import audit_event_write

NUMBER_SEQUENCE = "labs_referral_number_seq"


def _next_referral_number() -> int:
    """Digits from 100001. A sequence on PostgreSQL (gaps allowed); a counter row elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [NUMBER_SEQUENCE])
            return cursor.fetchone()[0]
    # SQLite runs IMMEDIATE transactions: the write lock is already ours, so no one else can
    # read the counter between this update and the read below.
    ReferralNumberCounter.objects.get_or_create(id=1)
    ReferralNumberCounter.objects.filter(id=1).update(last_number=F("last_number") + 1)
    return ReferralNumberCounter.objects.values_list("last_number", flat=True).get(id=1)


def _expand(items, panels) -> list[Item]:
    """Items in the order given, panels expanded in place, each item once."""
    seen: set[int] = set()
    result: list[Item] = []
    for group in [list(items)] + [list(p.items.order_by("name", "id")) for p in panels]:
        for item in group:
            if item.pk not in seen:
                seen.add(item.pk)
                result.append(item)
    return result


def ivls_lines(referral: Referral) -> list[ReferralLine]:
    return list(referral.lines.select_related("item").filter(item__is_ivls_analysis=True))


@transaction.atomic
def referral_create(
    *,
    consultation: Consultation,
    items=(),
    panels: "tuple[LabPanel, ...] | list[LabPanel]" = (),
    created_by=None,
) -> Referral:
    """Order lab work: the referral, a line and a charge per item, and a New work request
    when any item is an IVLS analysis — all in one transaction, so the plug-in sees the
    request on its next poll with no worker running."""
    department = consultation.department
    wanted = _expand(items, panels)
    if not wanted:
        raise ValidationError("Choose at least one lab item or panel.")
    item_list = item_list_for_department(department)
    for item in wanted:
        if item_list is not None and item.item_list_id != item_list.pk:
            raise ValidationError(f"{item.name} is not in this department's item list.")
        if not item.active:
            raise ValidationError(f"{item.name} is no longer active.")
    sends_to_ivls = any(item.is_ivls_analysis for item in wanted)
    referral = Referral.objects.create(
        number=_next_referral_number(),
        consultation=consultation,
        department=department,
        status=state.referral_initial_status(sends_to_ivls=sends_to_ivls),
        sends_to_ivls=sends_to_ivls,
        created_by=created_by,
    )
    lines = [
        ReferralLine.objects.create(
            referral=referral,
            item=item,
            consultation_line=consultation_line_add(
                consultation=consultation, item=item, added_by=created_by
            ),
        )
        for item in wanted
    ]
    audit_event_write(
        action="referral.created",
        department=department,
        actor_user=created_by,
        subject=referral,
        patient_id=consultation.patient_id,
        data={
            "number": referral.number,
            "status": referral.status,
            "codes": [item.code for item in wanted],
            "panels": [panel.pk for panel in panels],
        },
    )
    if sends_to_ivls:
        transport_for(ROUTE_IVLS).referral_queued(
            referral=referral, lines=[line for line in lines if line.item.is_ivls_analysis]
        )
    return referral


def _has_results(referral: Referral) -> bool:
    return referral.results.exists() or referral.runs.exists()


@transaction.atomic
def referral_cancel(*, referral: Referral, reason: str = "", cancelled_by=None) -> Referral:
    """Cancel before any result; a queued or sent IVLS referral also gets a Cancel request."""
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if _has_results(referral):
        raise ValidationError(
            f"Referral {referral.number} already has results and cannot be cancelled."
        )
    was = referral.status
    if not state.referral_transition(
        referral=referral,
        event=state.EVENT_CANCELLED,
        actor_user=cancelled_by,
        data={"reason": reason},
        cancel_reason=reason[:300],
    ):
        raise ValidationError(f"Referral {referral.number} is {referral.status}: not cancellable.")
    # With no IVLS line left, the line removals already queued the Cancel.
    if referral.sends_to_ivls and was in (state.QUEUED, state.SENT) and ivls_lines(referral):
        transport_for(ROUTE_IVLS).referral_cancelled(referral=referral)
    return referral


def _done_through_run(referral: Referral, line: ReferralLine) -> bool:
    """An IVLS line done by the done-lines rule without a result of its own: an ordering line
    whose yields have results (it carries their charge), or a line the matched run answered."""
    item = line.item
    if not item.is_ivls_analysis:
        return False
    if item.yields:
        return referral.results.filter(is_current=True, code__in=item.yields).exists()
    return referral.runs.filter(review_state=LabRun.STATE_MATCHED).exists()


@transaction.atomic
def referral_line_remove(*, line: ReferralLine, removed_by=None) -> Referral:
    """Remove a line without results, and its charge. Removing an IVLS line from a queued
    or sent referral queues a Cancel, then a New for the IVLS lines that remain."""
    # Lock order everywhere: referral, then run, then lines.
    referral = Referral.objects.select_for_update().get(pk=line.referral_id)
    line = ReferralLine.objects.select_related("item", "consultation_line").get(pk=line.pk)
    if line.results.exists() or _done_through_run(referral, line):
        raise ValidationError(f"{line.item.name} has results and cannot be removed.")
    if referral.status in (state.CANCELLED, state.COMPLETE):
        raise ValidationError(f"Referral {referral.number} is {referral.status}.")
    if getattr(line.consultation_line, "invoice_id", None):
        raise ValidationError(f"{line.item.name} is already invoiced.")
    resend = (
        line.item.is_ivls_analysis
        and referral.sends_to_ivls
        and referral.status in (state.QUEUED, state.SENT)
    )
    transport = transport_for(ROUTE_IVLS)
    if resend:
        transport.referral_cancelled(referral=referral)
    charge = line.consultation_line
    line.delete()
    charge.delete()
    audit_event_write(
        action="referral.line_removed",
        department=referral.department,
        actor_user=removed_by,
        subject=referral,
        patient_id=referral.consultation.patient_id,
        data={"item": line.item.name, "code": line.item.code},
    )
    remaining = ivls_lines(referral)
    if resend and remaining:
        transport.referral_queued(referral=referral, lines=remaining)
    if not referral.lines.exists():
        state.referral_transition(
            referral=referral,
            event=state.EVENT_CANCELLED,
            actor_user=removed_by,
            data={"reason": "every line was removed"},
            cancel_reason="Every line was removed.",
        )
    elif referral.status == state.PARTIAL:
        referral_progress_update(referral=referral, actor_user=removed_by)
    return referral


def referral_progress_update(*, referral: Referral, actor_user=None, actor_type=None) -> Referral:
    """Move a referral to partial or complete by the done-lines rule (after a result)."""
    from labs.selectors import referral_done_lines

    done, total = referral_done_lines(referral)
    event = state.EVENT_COMPLETE if total and done == total else state.EVENT_PARTIAL
    state.referral_transition(
        referral=referral,
        event=event,
        actor_user=actor_user,
        actor_type=actor_type,
        data={"done": done, "lines": total},
    )
    return referral


@transaction.atomic
def result_record(
    *,
    line: ReferralLine,
    value,
    unit: str = "",
    low: Decimal | None = None,
    high: Decimal | None = None,
    entered_by,
) -> Result:
    """A result entered by hand for a line no analyser fills. A second entry corrects the
    first: the earlier value stays as history."""
    referral = Referral.objects.select_for_update().get(pk=line.referral_id)
    if referral.status == state.CANCELLED:
        raise ValidationError(f"Referral {referral.number} is cancelled.")
    line = ReferralLine.objects.select_related("item").get(pk=line.pk)
    text = str(value).strip()
    if not text:
        raise ValidationError("Enter a result.")
    low = Decimal(str(low)) if low not in (None, "") else None
    high = Decimal(str(high)) if high not in (None, "") else None
    previous = Result.objects.filter(referral_line=line, run__isnull=True, is_current=True)
    revision = 1 + max((r.revision for r in previous), default=0)
    previous.update(is_current=False)
    number = number_from_text(text)
    result = Result.objects.create(
        run=None,
        revision=revision,
        referral=referral,
        referral_line=line,
        code=line.item.code,
        value_text=text[:500],
        value_number=number,
        unit=unit or line.item.unit,
        low=low,
        high=high,
        flag=result_flag(number, low=low, high=high),
        entered_by=entered_by,
    )
    audit_event_write(
        action="result.entered",
        department=referral.department,
        actor_user=entered_by,
        subject=result,
        patient_id=referral.consultation.patient_id,
        data={"referral": referral.number, "code": result.code, "value": text, "rev": revision},
    )
    referral_progress_update(referral=referral, actor_user=entered_by)
    return result
