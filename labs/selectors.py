"""Reads of lab data shared by services, views and integrations."""

from django.db.models import Prefetch, QuerySet

from billing.models import Item
from labs.models import LabRun, Referral, ReferralLine, Result


def referral_lines_with_items(referral: Referral) -> list[ReferralLine]:
    return list(referral.lines.select_related("item").order_by("id"))


def current_results_for_referral(referral: Referral) -> QuerySet[Result]:
    return Result.objects.filter(referral=referral, is_current=True)


def referral_done_lines(referral: Referral) -> tuple[int, int]:
    """(done, total) by the done-lines rule.

    A line is done when it has a result; an ordering line (an IVLS item with yields) when
    the referral has a result for any of its yields; an IVLS line with neither yields nor a
    result of its own once any run has been matched to the referral.
    """
    lines = referral_lines_with_items(referral)
    results = list(current_results_for_referral(referral).values_list("referral_line_id", "code"))
    lines_with_result = {line_id for line_id, _ in results if line_id is not None}
    codes = {code for _, code in results}
    run_matched = referral.runs.filter(review_state=LabRun.STATE_MATCHED).exists()
    done = 0
    for line in lines:
        item = line.item
        if line.id in lines_with_result:
            done += 1
        elif item.is_ivls_analysis and item.yields:
            done += any(code in codes for code in item.yields)
        elif item.is_ivls_analysis and run_matched:
            done += 1
    return done, len(lines)


def referrals_for_consultation(consultation) -> QuerySet[Referral]:
    """Referrals with lines, items, current results and documents, in a flat query count."""
    return (
        Referral.objects.filter(consultation=consultation)
        .select_related("department")
        .prefetch_related(
            Prefetch("lines", queryset=ReferralLine.objects.select_related("item").order_by("id")),
            Prefetch(
                "results",
                queryset=Result.objects.filter(is_current=True).select_related("run"),
                to_attr="current_results",
            ),
            "documents",
        )
        .order_by("-created_at", "-id")
    )


def lab_items_for_item_list(item_list_id: int) -> QuerySet[Item]:
    return Item.objects.filter(item_list_id=item_list_id, kind=Item.KIND_LAB, active=True)
