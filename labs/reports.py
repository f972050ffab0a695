"""Lab work done but not yet invoiced, for one department over a period of its local days.

A billing report by purpose (billing's reports page lists it), kept here because it reads lab
results and runs, and billing sits below labs. It uses billing's period and CSV writer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q

from billing.models import ConsultationLine, Invoice
from billing.money import Amounts, line_amounts
from billing.reports import Period
from labs.models import LabRun, Referral, Result
from pims.models import Department


@dataclass
class UninvoicedLine:
    line: ConsultationLine
    referral_number: int
    patient_name: str
    client_name: str
    consultation_day: dt.date
    amount: Amounts
    draft_invoice_id: int | None


@dataclass
class UninvoicedLabReport:
    rows: list[UninvoicedLine]

    @property
    def total(self) -> Amounts:
        result = Amounts()
        for row in self.rows:
            result = result + row.amount
        return result

    csv_header = [
        "Visit date",
        "Referral",
        "Client",
        "Patient",
        "Item",
        "Quantity",
        "Unit price",
        "Gross",
        "On draft invoice",
    ]

    def csv_rows(self, department: Department):
        for row in self.rows:
            yield [
                f"{row.consultation_day:%Y-%m-%d}",
                row.referral_number,
                row.client_name,
                row.patient_name,
                row.line.description,
                row.line.quantity,
                row.line.unit_price,
                row.amount.gross,
                row.draft_invoice_id or "",
            ]
        yield ["Total", "", "", "", "", "", "", self.total.gross, ""]


def uninvoiced_lab_report(department: Department, period: Period) -> UninvoicedLabReport:
    """Lab charges of visits in the period whose work is done but that no final invoice
    holds: not invoiced at all, or only on a draft (listed with the draft's id).

    A line counts as done by the referral's done-lines rule: it has a current result; an
    ordering item (an IVLS item with yields) once any of its yields has one; an IVLS item
    without yields once a run was matched to the referral. The rule is applied here over all
    the period's referrals at once (labs.selectors.referral_done_lines does one referral), so
    the query count does not grow with the number of visits.
    """
    start, end = period.bounds(department)
    lines = list(
        ConsultationLine.objects.filter(
            consultation__department=department,
            consultation__started_at__gte=start,
            consultation__started_at__lt=end,
            referral_line__isnull=False,
        )
        .filter(Q(invoice__isnull=True) | Q(invoice__status=Invoice.STATUS_DRAFT))
        .exclude(referral_line__referral__status=Referral.STATUS_CANCELLED)
        .select_related(
            "item",
            "invoice",
            "consultation__patient__client",
            "referral_line__referral",
            "referral_line__item",
        )
        .order_by("consultation__started_at", "id")
    )
    referral_ids = {line.referral_line.referral_id for line in lines}
    current = Result.objects.filter(referral_id__in=referral_ids, is_current=True)
    lines_with_result = set(
        current.exclude(referral_line_id=None).values_list("referral_line_id", flat=True)
    )
    codes_by_referral: dict[int, set[str]] = defaultdict(set)
    for referral_id, code in current.values_list("referral_id", "code"):
        codes_by_referral[referral_id].add(code)
    matched = set(
        LabRun.objects.filter(
            referral_id__in=referral_ids, review_state=LabRun.STATE_MATCHED
        ).values_list("referral_id", flat=True)
    )
    list_prices_include_vat = (
        department.item_list.prices_include_vat if department.item_list_id else True
    )
    rows = []
    for line in lines:
        referral_line = line.referral_line
        item = referral_line.item
        referral_id = referral_line.referral_id
        if referral_line.pk in lines_with_result:
            done = True
        elif item.is_ivls_analysis and item.yields:
            done = any(code in codes_by_referral[referral_id] for code in item.yields)
        else:
            done = item.is_ivls_analysis and referral_id in matched
        if not done:
            continue
        rows.append(
            UninvoicedLine(
                line=line,
                referral_number=referral_line.referral.number,
                patient_name=line.consultation.patient.name,
                client_name=line.consultation.patient.client.full_name,
                consultation_day=line.consultation.started_at.astimezone(department.zone).date(),
                amount=line_amounts(
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    vat_rate=line.vat_rate,
                    prices_include_vat=(
                        line.invoice.prices_include_vat
                        if line.invoice_id
                        else list_prices_include_vat
                    ),
                ),
                draft_invoice_id=line.invoice_id,
            )
        )
    return UninvoicedLabReport(rows)
