"""Billing reports of one department over a period of its local calendar days.

Each report is a small dataclass of rows and totals, read in a fixed number of queries, and
can be written as CSV with the same columns the page shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.db.models import Q

from billing.models import ConsultationLine, Invoice, Payment, Refund
from billing.money import ZERO, Amounts, line_amounts
from billing.selectors import balance_of, invoices_with_balances
from pims.models import Department


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    def bounds(self, department: Department) -> tuple[dt.datetime, dt.datetime]:
        """The period as aware datetimes [start, end) in the department's own time zone."""
        zone = department.zone
        return (
            dt.datetime.combine(self.start, dt.time.min, tzinfo=zone),
            dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
        )

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}"


# --- Revenue ---------------------------------------------------------------------------------


@dataclass
class RevenueReport:
    invoices: list[Invoice]
    by_rate: list[tuple[Decimal, Amounts]]
    totals: Amounts
    invoiced: Amounts
    credited: Amounts

    csv_header = ["Number", "Kind", "Issued", "Client", "Net", "VAT", "Gross"]

    def csv_rows(self, department: Department):
        for invoice in self.invoices:
            yield [
                invoice.number,
                invoice.get_kind_display(),
                f"{invoice.issued_at.astimezone(department.zone):%Y-%m-%d}",
                invoice.client.full_name,
                invoice.total_net,
                invoice.total_vat,
                invoice.total_gross,
            ]
        yield ["Total", "", "", "", self.totals.net, self.totals.vat, self.totals.gross]


def revenue_report(department: Department, period: Period) -> RevenueReport:
    """Final invoices and credit notes issued in the period (credit notes count negative)."""
    start, end = period.bounds(department)
    invoices = list(
        Invoice.objects.filter(
            department=department,
            status=Invoice.STATUS_FINAL,
            issued_at__gte=start,
            issued_at__lt=end,
        )
        .select_related("client")
        .prefetch_related("lines")
        .order_by("issued_at", "id")
    )
    by_rate: dict[Decimal, Amounts] = defaultdict(Amounts)
    invoiced = credited = Amounts()
    for invoice in invoices:
        amounts = Amounts(invoice.total_net, invoice.total_vat, invoice.total_gross)
        if invoice.is_credit_note:
            credited = credited + amounts
        else:
            invoiced = invoiced + amounts
        for line in invoice.lines.all():
            by_rate[line.vat_rate] = by_rate[line.vat_rate] + Amounts(
                line.net, line.vat, line.gross
            )
    return RevenueReport(
        invoices=invoices,
        by_rate=sorted(by_rate.items()),
        totals=invoiced + credited,
        invoiced=invoiced,
        credited=credited,
    )


# --- Payments collected ----------------------------------------------------------------------


@dataclass
class MoneyMovement:
    at: dt.datetime
    kind: str  # "Payment" or "Refund"
    invoice: Invoice
    method: str
    amount: Decimal  # refunds negative
    note: str = ""


@dataclass
class PaymentsReport:
    movements: list[MoneyMovement]
    by_method: list[tuple[str, Decimal, Decimal, Decimal]]  # label, received, refunded, net
    received: Decimal
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.received - self.refunded

    csv_header = ["Date", "Type", "Invoice", "Client", "Method", "Amount", "Note"]

    def csv_rows(self, department: Department):
        for row in self.movements:
            yield [
                f"{row.at.astimezone(department.zone):%Y-%m-%d %H:%M}",
                row.kind,
                row.invoice.number,
                row.invoice.client.full_name,
                row.method,
                row.amount,
                row.note,
            ]
        yield ["Total", "", "", "", "", self.net, ""]


def payments_report(department: Department, period: Period) -> PaymentsReport:
    """Money received in the period, less the refunds given in it, by payment method."""
    start, end = period.bounds(department)
    payments = list(
        Payment.objects.filter(
            invoice__department=department, paid_at__gte=start, paid_at__lt=end
        ).select_related("invoice__client")
    )
    refunds = list(
        Refund.objects.filter(
            payment__invoice__department=department, at__gte=start, at__lt=end
        ).select_related("payment__invoice__client")
    )
    methods = dict(Payment.METHODS)
    movements = [
        MoneyMovement(p.paid_at, "Payment", p.invoice, methods[p.method], p.amount, p.reference)
        for p in payments
    ] + [
        MoneyMovement(
            r.at, "Refund", r.payment.invoice, methods[r.payment.method], -r.amount, r.reason
        )
        for r in refunds
    ]
    movements.sort(key=lambda row: row.at)
    by_method = []
    for method, label in Payment.METHODS:
        received = sum((p.amount for p in payments if p.method == method), ZERO)
        refunded = sum((r.amount for r in refunds if r.payment.method == method), ZERO)
        if received or refunded:
            by_method.append((label, received, refunded, received - refunded))
    return PaymentsReport(
        movements=movements,
        by_method=by_method,
        received=sum((p.amount for p in payments), ZERO),
        refunded=sum((r.amount for r in refunds), ZERO),
    )


# --- Outstanding balances --------------------------------------------------------------------


@dataclass
class ClientBalance:
    client_id: int
    client_name: str
    invoices: list[tuple[Invoice, Decimal]] = field(default_factory=list)
    oldest_due: dt.date | None = None

    @property
    def balance(self) -> Decimal:
        return sum((balance for _, balance in self.invoices), ZERO)


@dataclass
class OutstandingReport:
    clients: list[ClientBalance]

    @property
    def total(self) -> Decimal:
        return sum((client.balance for client in self.clients), ZERO)

    csv_header = ["Client", "Invoices", "Oldest due date", "Balance"]

    def csv_rows(self, department: Department):
        for client in self.clients:
            yield [
                client.client_name,
                " ".join(invoice.number for invoice, _ in client.invoices),
                f"{client.oldest_due:%Y-%m-%d}" if client.oldest_due else "",
                client.balance,
            ]
        yield ["Total", "", "", self.total]


def outstanding_report(
    department: Department, *, as_of: dt.date | None = None
) -> OutstandingReport:
    """Clients with final invoices not settled (balance not zero), largest balance first.

    Negative balances (the clinic owes the client: overpaid) are listed too, so they get
    refunded. ``as_of`` limits it to invoices issued up to that day; payments count in full.
    """
    qs = Invoice.objects.filter(
        department=department, status=Invoice.STATUS_FINAL, kind=Invoice.KIND_INVOICE
    ).select_related("client")
    if as_of is not None:
        qs = qs.filter(
            issued_at__lt=dt.datetime.combine(
                as_of + dt.timedelta(days=1), dt.time.min, tzinfo=department.zone
            )
        )
    clients: dict[int, ClientBalance] = {}
    for invoice in invoices_with_balances(qs).order_by("issued_at", "id"):
        balance = balance_of(invoice).balance
        if balance == 0:
            continue
        row = clients.setdefault(
            invoice.client_id, ClientBalance(invoice.client_id, invoice.client.full_name)
        )
        row.invoices.append((invoice, balance))
        if (
            balance > 0
            and invoice.due_date
            and (row.oldest_due is None or invoice.due_date < row.oldest_due)
        ):
            row.oldest_due = invoice.due_date
    return OutstandingReport(
        sorted(clients.values(), key=lambda c: (-c.balance, c.client_name.lower()))
    )


# --- Lab work not yet invoiced ---------------------------------------------------------------


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
    without yields once a run was matched to the referral.
    """
    # billing sits below labs and must not import it; the reverse relations labs declares
    # onto ConsultationLine ("referral_line", its "referral" and "results") are read by name.
    start, end = period.bounds(department)
    lines = list(
        ConsultationLine.objects.filter(
            consultation__department=department,
            consultation__started_at__gte=start,
            consultation__started_at__lt=end,
            referral_line__isnull=False,
        )
        .filter(Q(invoice__isnull=True) | Q(invoice__status=Invoice.STATUS_DRAFT))
        .exclude(referral_line__referral__status="cancelled")
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
    result_model = apps.get_model("labs", "Result")
    run_model = apps.get_model("labs", "LabRun")
    current = result_model.objects.filter(referral_id__in=referral_ids, is_current=True)
    lines_with_result = set(
        current.exclude(referral_line_id=None).values_list("referral_line_id", flat=True)
    )
    codes_by_referral: dict[int, set[str]] = defaultdict(set)
    for referral_id, code in current.values_list("referral_id", "code"):
        codes_by_referral[referral_id].add(code)
    matched = set(
        run_model.objects.filter(referral_id__in=referral_ids, review_state="matched").values_list(
            "referral_id", flat=True
        )
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


# --- CSV ---------------------------------------------------------------------------------------


def report_csv(report, department: Department) -> str:
    """The report as CSV text; cells a spreadsheet would run as formulas are defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.csv_header)
    for row in report.csv_rows(department):
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value) -> str:
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True
