"""Billing reports of one department over a period of its local calendar days.

Each report is a small dataclass of rows and totals, read in a fixed number of queries, and
can be written as CSV with the same columns the page shows. The report of lab work not yet
invoiced reads lab results, so it lives in labs (``labs.reports``), which sits above billing;
it uses the Period and CSV writer below.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from billing.forms import PeriodForm
from billing.models import Invoice, Payment, Refund
from billing.money import ZERO, Amounts
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


# Billing's own reports, by the slug in their URL.
REPORTS = {
    "revenue": "Revenue",
    "payments": "Payments collected",
    "outstanding": "Outstanding balances",
}


def report_period(query, *, today: dt.date) -> tuple[PeriodForm, Period]:
    """The period a report page shows: the month so far, or the one chosen in ``query`` (the
    page's GET parameters); with the form that chooses it."""
    first = today.replace(day=1)
    form = PeriodForm(query or None, initial={"start": first, "end": today})
    if query and form.is_valid():
        return form, Period(form.cleaned_data["start"], form.cleaned_data["end"])
    return form, Period(first, today)


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
