import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from billing.models import (
    ConsultationLine,
    Instalment,
    Invoice,
    InvoiceLine,
    Item,
    ItemList,
    Payment,
    PaymentPlan,
    Refund,
)
from billing.money import ZERO, Amounts, line_amounts
from patients.models import Consultation
from pims.models import Department


def item_list_for_department(department: Department) -> ItemList | None:
    return department.item_list


def item_by_code(*, item_list: ItemList, code: str) -> Item | None:
    """The item with exactly this Code (case matters) in the item list."""
    if not code:
        return None
    return Item.objects.filter(item_list=item_list, code=code).first()


def items_by_codes(*, item_list: ItemList, codes: Iterable[str]) -> dict[str, Item]:
    """The items with exactly these Codes (case matters) in the item list, by Code, each with
    its VAT rate loaded: one query however many Codes."""
    codes = {code for code in codes if code}
    if not codes:
        return {}
    return {
        item.code: item
        for item in Item.objects.filter(item_list=item_list, code__in=codes).select_related(
            "vat_rate"
        )
    }


# --- Invoices, balances and payment status -----------------------------------------------------

UNPAID = "unpaid"
PARTIALLY_PAID = "partially_paid"
PAID = "paid"
OVERPAID = "overpaid"
REFUNDED = "refunded"
CREDITED = "credited"
PAYMENT_STATUS_LABELS = {
    UNPAID: "Unpaid",
    PARTIALLY_PAID: "Partially paid",
    PAID: "Paid",
    OVERPAID: "Overpaid",
    REFUNDED: "Refunded",
    CREDITED: "Credited",
}


@dataclass(frozen=True)
class Balance:
    """Where an invoice stands. ``due`` is its gross less any credit note; ``paid`` is what
    was received less what was refunded; ``balance`` is what the client still owes (negative
    when the clinic owes the client)."""

    due: Decimal
    received: Decimal
    refunded: Decimal
    credited: Decimal

    @property
    def paid(self) -> Decimal:
        return self.received - self.refunded

    @property
    def balance(self) -> Decimal:
        return self.due - self.paid

    @property
    def status(self) -> str:
        paid = self.paid
        if paid > self.due:
            return OVERPAID
        if paid > 0:
            return PAID if paid == self.due else PARTIALLY_PAID
        if self.refunded > 0:
            return REFUNDED
        if self.credited:
            return CREDITED
        return PAID if self.due <= 0 else UNPAID

    @property
    def status_label(self) -> str:
        return PAYMENT_STATUS_LABELS[self.status]


def _sum(qs, field: str) -> Decimal:
    return qs.aggregate(s=Sum(field))["s"] or ZERO


def invoice_balance(invoice: Invoice) -> Balance:
    credited = _sum(Invoice.objects.filter(credits=invoice, status="final"), "total_gross")
    return Balance(
        due=invoice.total_gross + credited,
        received=_sum(Payment.objects.filter(invoice=invoice), "amount"),
        refunded=_sum(Refund.objects.filter(payment__invoice=invoice), "amount"),
        credited=credited,
    )


def _money_subquery(qs, field: str):
    return Coalesce(
        Subquery(qs.order_by().values(total=Func(F(field), function="SUM"))[:1]),
        Value(ZERO),
        output_field=DecimalField(max_digits=12, decimal_places=2),
    )


def invoices_with_balances(qs: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Invoices annotated with what :func:`invoice_balance` reads, in one query; turn a row
    into a :class:`Balance` with :func:`balance_of`."""
    return qs.annotate(
        received_sum=_money_subquery(Payment.objects.filter(invoice=OuterRef("pk")), "amount"),
        refunded_sum=_money_subquery(
            Refund.objects.filter(payment__invoice=OuterRef("pk")), "amount"
        ),
        credited_sum=_money_subquery(
            Invoice.objects.filter(credits=OuterRef("pk"), status="final"), "total_gross"
        ),
    )


def balance_of(invoice: Invoice) -> Balance:
    """The balance of an invoice from :func:`invoices_with_balances` (no query)."""
    return Balance(
        due=invoice.total_gross + invoice.credited_sum,
        received=invoice.received_sum,
        refunded=invoice.refunded_sum,
        credited=invoice.credited_sum,
    )


def invoices_for_department(
    department: Department, *, status: str = "", query: str = ""
) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(department=department).select_related("client", "credits")
    if status in ("draft", "final"):
        qs = qs.filter(status=status)
    if query:
        qs = qs.filter(
            Q(number__icontains=query)
            | Q(client__last_name__icontains=query)
            | Q(client__first_name__icontains=query)
        )
    return invoices_with_balances(qs).order_by("-created_at", "-id")


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    return list(invoice.lines.select_related("item").order_by("position", "id"))


def invoice_preview_amounts(invoice: Invoice, lines: list[InvoiceLine]) -> list[Amounts]:
    """Each line's net, VAT and gross: as stored once final, as they would be for a draft."""
    if not invoice.is_draft:
        return [Amounts(line.net, line.vat, line.gross) for line in lines]
    return [
        line_amounts(
            quantity=line.quantity,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
            prices_include_vat=invoice.prices_include_vat,
        )
        for line in lines
    ]


def vat_breakdown(
    lines: list[InvoiceLine], amounts: list[Amounts]
) -> list[tuple[Decimal, Amounts]]:
    """Net, VAT and gross per VAT rate, lowest rate first (what an invoice must show)."""
    by_rate: dict[Decimal, Amounts] = {}
    for line, amount in zip(lines, amounts, strict=True):
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Amounts()) + amount
    return sorted(by_rate.items())


def consultations_to_invoice(department: Department) -> QuerySet[Consultation]:
    """The department's consultations with charges not yet on any invoice."""
    uninvoiced = ConsultationLine.objects.filter(consultation=OuterRef("pk"), invoice__isnull=True)
    return (
        Consultation.objects.filter(department=department)
        .filter(Exists(uninvoiced))
        .select_related("patient__client")
        .annotate(
            open_lines=Subquery(
                uninvoiced.order_by().values("consultation").annotate(n=Count("id")).values("n")[:1]
            )
        )
        .order_by("-started_at", "-id")
    )


def draft_for_consultation(consultation: Consultation) -> Invoice | None:
    return (
        Invoice.objects.filter(consultations=consultation, status=Invoice.STATUS_DRAFT)
        .order_by("-created_at")
        .first()
    )


# --- Payment plans -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalmentState:
    instalment: Instalment
    paid: Decimal
    state: str  # "paid", "part_paid", "due", "overdue"

    @property
    def left(self) -> Decimal:
        return self.instalment.amount - self.paid


def payment_plan_schedule(
    plan: PaymentPlan, *, today: dt.date, balance: Balance | None = None
) -> list[InstalmentState]:
    """The instalments with what has been paid towards each, oldest first: payments since the
    plan was agreed pay the earliest instalment first. Unpaid after its due date is overdue."""
    balance = balance or invoice_balance(plan.invoice)
    available = max(balance.paid - plan.paid_before, ZERO)
    rows = []
    for instalment in plan.instalments.all():
        paid = min(available, instalment.amount)
        available -= paid
        if paid == instalment.amount:
            state = "paid"
        elif instalment.due_date < today:
            state = "overdue"
        else:
            state = "part_paid" if paid > 0 else "due"
        rows.append(InstalmentState(instalment, paid, state))
    return rows


def payment_plans_overdue(department: Department, *, today: dt.date) -> list[dict]:
    """Active plans of the department with an instalment past its date and not fully paid."""
    plans = (
        PaymentPlan.objects.filter(
            invoice__department=department,
            cancelled_at__isnull=True,
            instalments__due_date__lt=today,
        )
        .distinct()
        .select_related("invoice__client")
        .prefetch_related("instalments")
    )
    invoices = {
        inv.pk: inv
        for inv in invoices_with_balances(
            Invoice.objects.filter(pk__in=[p.invoice_id for p in plans])
        )
    }
    result = []
    for plan in plans:
        schedule = payment_plan_schedule(
            plan, today=today, balance=balance_of(invoices[plan.invoice_id])
        )
        overdue = [row for row in schedule if row.state == "overdue"]
        if overdue:
            result.append(
                {
                    "plan": plan,
                    "invoice": plan.invoice,
                    "overdue": sum((row.left for row in overdue), ZERO),
                    "oldest_due": overdue[0].instalment.due_date,
                }
            )
    return sorted(result, key=lambda row: row["oldest_due"])
