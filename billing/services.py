import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import (
    ConsultationLine,
    Instalment,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Item,
    ItemList,
    Payment,
    PaymentPlan,
    Refund,
    VatRate,
)
from billing.money import Amounts, add_months, is_whole_cents, line_amounts, split_evenly, total
from billing.selectors import invoice_balance, item_list_for_department
from patients.models import Client, Consultation
from pims.models import Department
from pims.services import audit_event_write, fields_apply, row_locked


def _charge(
    consultation: Consultation,
    item: Item,
    *,
    quantity: Decimal,
    unit_price: Decimal | None,
    vat_rate: Decimal,
    added_by,
) -> ConsultationLine:
    return ConsultationLine(
        consultation=consultation,
        item=item,
        description=item.name,
        quantity=quantity,
        unit_price=item.price if unit_price is None else unit_price,
        vat_rate=vat_rate,
        added_by=added_by,
    )


def _vat_rates(items: list[Item]) -> dict[int, Decimal]:
    """The VAT rate of each item's rate id: from the rate loaded with the item where it was
    (``select_related("vat_rate")``), otherwise from one query for all of them."""
    rates = {
        item.vat_rate_id: item.vat_rate.rate
        for item in items
        if item.vat_rate_id and Item.vat_rate.is_cached(item)
    }
    missing = {item.vat_rate_id for item in items if item.vat_rate_id} - rates.keys()
    if missing:
        rates.update(VatRate.objects.filter(pk__in=missing).values_list("pk", "rate"))
    return rates


def consultation_line_add(
    *,
    consultation: Consultation,
    item: Item,
    quantity: Decimal = Decimal("1"),
    unit_price: Decimal | None = None,
    added_by=None,
) -> ConsultationLine:
    """Charge an item on a consultation, copying its name, price and VAT rate as of now.

    ``unit_price`` overrides the item's price (zero for an analyte its ordering line pays for).
    """
    line = _charge(
        consultation,
        item,
        quantity=quantity,
        unit_price=unit_price,
        vat_rate=item.vat_rate.rate if item.vat_rate_id else Decimal("0"),
        added_by=added_by,
    )
    line.save(force_insert=True)
    return line


def consultation_lines_add(
    *,
    consultation: Consultation,
    charges: Iterable[tuple[Item, Decimal | None]],
    added_by=None,
) -> list[ConsultationLine]:
    """``consultation_line_add`` for many items at once: one line per ``(item, unit_price)``
    (``None`` for the item's price), quantity one, in the order given, with their ids.

    One insert, plus one read of VAT rates for items loaded without theirs, so the queries
    do not grow with the number of lines (matching adds a line per analyte). ``bulk_create``
    is atomic by itself (its batches share one transaction).
    """
    charges = list(charges)
    if not charges:
        return []
    rates = _vat_rates([item for item, _ in charges])
    lines = [
        _charge(
            consultation,
            item,
            quantity=Decimal("1"),
            unit_price=unit_price,
            vat_rate=rates.get(item.vat_rate_id, Decimal("0")),
            added_by=added_by,
        )
        for item, unit_price in charges
    ]
    if connection.features.can_return_rows_from_bulk_insert:
        return ConsultationLine.objects.bulk_create(lines)
    # A backend that cannot return the new ids from a multi-row insert (SQLite before 3.35).
    with transaction.atomic():
        for line in lines:
            line.save(force_insert=True)
    return lines


# --- Invoices ---------------------------------------------------------------------------------
# Every service below is one transaction. Those that change an invoice lock its row first
# (select_for_update), so a person editing a draft and another finalising it cannot both win;
# a final invoice is never changed again.


def _lock_invoice(invoice: Invoice) -> Invoice:
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("department")
        .get(pk=invoice.pk)
    )


def _lock_draft(invoice: Invoice) -> Invoice:
    invoice = _lock_invoice(invoice)
    if not invoice.is_draft:
        raise ValidationError(f"{invoice} is final and cannot be changed.")
    return invoice


def _audit(action: str, invoice: Invoice, user, **data) -> None:
    audit_event_write(
        action=action,
        department=invoice.department,
        actor_user=user,
        subject=invoice,
        data={"invoice": invoice.pk, "number": invoice.number, **data},
    )


def _prices_include_vat(department: Department, lines: list[ConsultationLine]) -> bool:
    item_list = item_list_for_department(department)
    if item_list is not None:
        return item_list.prices_include_vat
    return lines[0].item.item_list.prices_include_vat if lines else True


def _uninvoiced_lines(consultation: Consultation) -> list[ConsultationLine]:
    # Locked so that two people invoicing the same visit at once cannot put one charge on
    # two invoices: the second waits, then sees the lines taken.
    return list(
        ConsultationLine.objects.select_for_update(of=("self",))
        .select_related("item__item_list")
        .filter(consultation=consultation, invoice__isnull=True)
        .order_by("added_at", "id")
    )


def _take_lines(invoice: Invoice, lines: list[ConsultationLine]) -> None:
    start = 1 + max(invoice.lines.values_list("position", flat=True), default=0)
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            consultation_line=line,
            item=line.item,
            position=start + i,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
        )
        for i, line in enumerate(lines)
    )
    ConsultationLine.objects.filter(pk__in=[line.pk for line in lines]).update(invoice=invoice)


@transaction.atomic
def invoice_create_for_consultation(*, consultation: Consultation, created_by) -> Invoice:
    """A draft invoice to the patient's owner from the visit's charges not yet invoiced."""
    lines = _uninvoiced_lines(consultation)
    if not lines:
        raise ValidationError("This consultation has no charges left to invoice.")
    department = consultation.department
    invoice = Invoice.objects.create(
        department=department,
        client=consultation.patient.client,
        prices_include_vat=_prices_include_vat(department, lines),
        created_by=created_by,
    )
    invoice.consultations.add(consultation)
    _take_lines(invoice, lines)
    _audit("invoice.created", invoice, created_by, consultation=consultation.pk, lines=len(lines))
    return invoice


@transaction.atomic
def invoice_create(*, department: Department, client: Client, created_by) -> Invoice:
    """An empty draft invoice (a sale without a consultation); add lines to it."""
    invoice = Invoice.objects.create(
        department=department,
        client=client,
        prices_include_vat=_prices_include_vat(department, []),
        created_by=created_by,
    )
    _audit("invoice.created", invoice, created_by)
    return invoice


@transaction.atomic
def invoice_consultation_add(*, invoice: Invoice, consultation: Consultation, added_by) -> Invoice:
    """Put another visit's charges not yet invoiced on a draft of the same client."""
    invoice = _lock_draft(invoice)
    if consultation.department_id != invoice.department_id:
        raise ValidationError("That consultation belongs to another department.")
    if consultation.patient.client_id != invoice.client_id:
        raise ValidationError("That consultation is for another client.")
    lines = _uninvoiced_lines(consultation)
    if not lines:
        raise ValidationError("This consultation has no charges left to invoice.")
    invoice.consultations.add(consultation)
    _take_lines(invoice, lines)
    _audit("invoice.consultation_added", invoice, added_by, consultation=consultation.pk)
    return invoice


def _checked_quantity(quantity) -> Decimal:
    try:
        quantity = Decimal(str(quantity))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError("Enter the quantity as a number.") from exc
    if quantity <= 0:
        raise ValidationError("The quantity must be more than zero.")
    if quantity != quantity.quantize(Decimal("0.001")):
        raise ValidationError("The quantity can have at most three decimals.")
    return quantity


def _checked_price(price) -> Decimal:
    try:
        price = Decimal(str(price))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError("Enter the price as a number.") from exc
    if price < 0:
        raise ValidationError("The price cannot be negative.")
    if not is_whole_cents(price):
        raise ValidationError("The price must be in whole cents.")
    return price


@transaction.atomic
def invoice_line_add(
    *, invoice: Invoice, item: Item, quantity=Decimal("1"), unit_price=None, added_by
) -> InvoiceLine:
    """A line for an item straight on a draft (not charged on any consultation)."""
    invoice = _lock_draft(invoice)
    line = InvoiceLine.objects.create(
        invoice=invoice,
        item=item,
        position=1 + max(invoice.lines.values_list("position", flat=True), default=0),
        description=item.name,
        quantity=_checked_quantity(quantity),
        unit_price=_checked_price(item.price if unit_price is None else unit_price),
        vat_rate=item.vat_rate.rate if item.vat_rate_id else Decimal("0"),
    )
    _audit("invoice.line_added", invoice, added_by, line=line.pk, item=item.pk)
    return line


@transaction.atomic
def invoice_line_update(
    *,
    line: InvoiceLine,
    description: str | None = None,
    quantity=None,
    unit_price=None,
    vat_rate=None,
    updated_by,
) -> InvoiceLine:
    """Change a line of a draft. The consultation's own charge stays as it was."""
    invoice = _lock_draft(line.invoice)
    line = InvoiceLine.objects.get(pk=line.pk, invoice=invoice)
    before = {
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "vat_rate": str(line.vat_rate),
    }
    if description is not None:
        description = description.strip()
        if not description:
            raise ValidationError("The description cannot be empty.")
        line.description = description[:200]
    if quantity is not None:
        line.quantity = _checked_quantity(quantity)
    if unit_price is not None:
        line.unit_price = _checked_price(unit_price)
    if vat_rate is not None:
        try:
            rate = Decimal(str(vat_rate))
        except (InvalidOperation, ValueError) as exc:
            raise ValidationError("Enter the VAT rate as a number.") from exc
        if not Decimal("0") <= rate < Decimal("100"):
            raise ValidationError("The VAT rate is a percentage from 0 to 100.")
        line.vat_rate = rate
    line.save(update_fields=["description", "quantity", "unit_price", "vat_rate"])
    _audit("invoice.line_updated", invoice, updated_by, line=line.pk, before=before)
    return line


@transaction.atomic
def invoice_line_remove(*, line: InvoiceLine, removed_by) -> Invoice:
    """Take a line off a draft; its consultation charge goes back to be invoiced later."""
    invoice = _lock_draft(line.invoice)
    line = InvoiceLine.objects.get(pk=line.pk, invoice=invoice)
    if line.consultation_line_id:
        ConsultationLine.objects.filter(pk=line.consultation_line_id, invoice=invoice).update(
            invoice=None
        )
    line.delete()
    _audit("invoice.line_removed", invoice, removed_by, description=line.description)
    return invoice


@transaction.atomic
def invoice_discard(*, invoice: Invoice, discarded_by) -> None:
    """Delete a draft; its consultation charges go back to be invoiced later."""
    invoice = _lock_draft(invoice)
    ConsultationLine.objects.filter(invoice=invoice).update(invoice=None)
    _audit("invoice.discarded", invoice, discarded_by)
    invoice.delete()


def _next_number(department: Department, year: int) -> int:
    """The next number of the department's year, gapless.

    The counter row stays locked until the finalising transaction commits, so concurrent
    finalisers take numbers one after another, and a rollback gives its number back.
    """
    InvoiceCounter.objects.bulk_create(
        [InvoiceCounter(department=department, year=year)], ignore_conflicts=True
    )
    counter = InvoiceCounter.objects.select_for_update().get(department=department, year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def _recipient(client: Client) -> str:
    place = " ".join(part for part in (client.postal_code, client.city) if part)
    return "\n".join(part for part in (client.full_name, client.address, place) if part)


def _issue(invoice: Invoice, user, lines: list[InvoiceLine]) -> None:
    """Number the invoice and freeze its amounts, recipient and dates (caller holds its lock)."""
    totals = total(
        Amounts(line.net, line.vat, line.gross)
        for line in lines  # amounts already set on each line
    )
    now = timezone.now()
    local_day = timezone.localdate(now, invoice.department.zone)
    sequence = _next_number(invoice.department, local_day.year)
    invoice.status = Invoice.STATUS_FINAL
    invoice.year = local_day.year
    invoice.sequence = sequence
    invoice.number = f"{local_day.year}-{sequence:06d}"
    invoice.issued_at = now
    if not invoice.is_credit_note:
        invoice.due_date = local_day + dt.timedelta(days=payment_terms_days())
    invoice.recipient = _recipient(invoice.client)
    invoice.total_net, invoice.total_vat, invoice.total_gross = (
        totals.net,
        totals.vat,
        totals.gross,
    )
    invoice.finalised_by = user
    invoice.save()


def payment_terms_days() -> int:
    return int(getattr(settings, "BILLING_PAYMENT_TERMS_DAYS", 14))


@transaction.atomic
def invoice_finalise(*, invoice: Invoice, finalised_by) -> Invoice:
    """Give a draft its number and freeze it: from here on no service changes it."""
    invoice = _lock_draft(invoice)
    lines = list(invoice.lines.order_by("position", "id"))
    if not lines:
        raise ValidationError("An invoice needs at least one line.")
    for line in lines:
        amounts = line_amounts(
            quantity=line.quantity,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
            prices_include_vat=invoice.prices_include_vat,
        )
        line.net, line.vat, line.gross = amounts.net, amounts.vat, amounts.gross
    InvoiceLine.objects.bulk_update(lines, ["net", "vat", "gross"])
    _issue(invoice, finalised_by, lines)
    _audit("invoice.finalised", invoice, finalised_by, gross=str(invoice.total_gross))
    return invoice


@transaction.atomic
def invoice_credit(
    *, invoice: Invoice, reason: str, created_by, release_lines: bool = False
) -> Invoice:
    """A final credit note cancelling the whole of a final invoice.

    Its lines mirror the original's with the signs reversed, so the two add up to zero to the
    cent. With ``release_lines`` the consultation charges go back to be invoiced again (to
    correct an invoice); without, they stay with the credited invoice (a write-off).
    """
    original = _lock_invoice(invoice)
    reason = (reason or "").strip()
    if original.is_draft:
        raise ValidationError("A draft is not credited: change or discard it instead.")
    if original.is_credit_note:
        raise ValidationError("A credit note cannot be credited.")
    if original.credit_notes.exists():
        raise ValidationError(f"{original} has already been credited.")
    if not reason:
        raise ValidationError("Give the reason for the credit note.")
    note = Invoice.objects.create(
        department=original.department,
        client=original.client,
        kind=Invoice.KIND_CREDIT_NOTE,
        credits=original,
        reason=reason[:300],
        prices_include_vat=original.prices_include_vat,
        created_by=created_by,
    )
    note.consultations.set(original.consultations.all())
    lines = InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=note,
            item_id=line.item_id,
            position=line.position,
            description=line.description,
            quantity=-line.quantity,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
            net=-line.net,
            vat=-line.vat,
            gross=-line.gross,
        )
        for line in original.lines.order_by("position", "id")
    )
    _issue(note, created_by, lines)
    released = 0
    if release_lines:
        released = ConsultationLine.objects.filter(invoice=original).update(invoice=None)
    _audit(
        "invoice.credited",
        original,
        created_by,
        credit_note=note.pk,
        credit_note_number=note.number,
        reason=reason,
        released_lines=released,
    )
    return note


# --- Payments and refunds (append-only) -------------------------------------------------------


def _checked_amount(amount) -> Decimal:
    try:
        amount = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError("Enter the amount as a number, e.g. 12.50.") from exc
    if not amount.is_finite() or amount <= 0:
        raise ValidationError("The amount must be more than zero.")
    if not is_whole_cents(amount):
        raise ValidationError("The amount must be in whole cents.")
    return amount


@transaction.atomic
def payment_record(
    *,
    invoice: Invoice,
    amount,
    method: str,
    paid_at: dt.datetime | None = None,
    reference: str = "",
    recorded_by,
) -> Payment:
    """Money received for a final invoice; part payments and overpayments are recorded as
    they happened (the balance shows what is left, or what to give back)."""
    invoice = _lock_invoice(invoice)
    if invoice.is_draft:
        raise ValidationError("Finalise the invoice before recording a payment.")
    if invoice.is_credit_note:
        raise ValidationError("A credit note takes no payments: refund a payment instead.")
    if method not in dict(Payment.METHODS):
        raise ValidationError(f"Unknown payment method {method!r}.")
    payment = Payment.objects.create(
        invoice=invoice,
        method=method,
        amount=_checked_amount(amount),
        paid_at=paid_at or timezone.now(),
        reference=reference.strip()[:100],
        recorded_by=recorded_by,
    )
    _audit(
        "payment.recorded",
        invoice,
        recorded_by,
        payment=payment.pk,
        amount=str(payment.amount),
        method=method,
    )
    return payment


@transaction.atomic
def refund_record(
    *, payment: Payment, amount, reason: str, at: dt.datetime | None = None, recorded_by
) -> Refund:
    """Give back part or all of one payment, never more than it has left."""
    # Locked so that two refunds of the same payment at once cannot together exceed it.
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("invoice__department")
        .get(pk=payment.pk)
    )
    amount = _checked_amount(amount)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give the reason for the refund.")
    refunded = payment.refunds.aggregate(s=Sum("amount"))["s"] or Decimal("0.00")
    left = payment.amount - refunded
    if amount > left:
        raise ValidationError(
            f"A refund of {amount} is more than this payment has left to refund: "
            f"{payment.amount} was paid, {refunded} already refunded, at most {left} "
            "can be refunded."
        )
    refund = Refund.objects.create(
        payment=payment,
        amount=amount,
        reason=reason[:300],
        at=at or timezone.now(),
        recorded_by=recorded_by,
    )
    _audit(
        "refund.recorded",
        payment.invoice,
        recorded_by,
        payment=payment.pk,
        refund=refund.pk,
        amount=str(amount),
        reason=reason,
    )
    return refund


# --- Payment plans -----------------------------------------------------------------------------


@transaction.atomic
def payment_plan_create(
    *, invoice: Invoice, instalments, note: str = "", created_by
) -> PaymentPlan:
    """Split an invoice's balance into instalments ``[(due_date, amount), ...]`` that add up
    to it exactly. Payments from now on pay the instalments oldest first."""
    invoice = _lock_invoice(invoice)
    if invoice.is_draft or invoice.is_credit_note:
        raise ValidationError("Only a final invoice can be paid in instalments.")
    if PaymentPlan.objects.filter(invoice=invoice, cancelled_at__isnull=True).exists():
        raise ValidationError("This invoice already has a payment plan: cancel it first.")
    balance = invoice_balance(invoice)
    if balance.balance <= 0:
        raise ValidationError("Nothing is left to pay on this invoice.")
    rows = sorted((due, _checked_amount(amount)) for due, amount in instalments)
    if not rows:
        raise ValidationError("Add at least one instalment.")
    planned = sum((amount for _, amount in rows), Decimal("0.00"))
    if planned != balance.balance:
        raise ValidationError(
            f"The instalments add up to {planned}, but {balance.balance} is left to pay."
        )
    plan = PaymentPlan.objects.create(
        invoice=invoice, paid_before=balance.paid, note=note.strip()[:300], created_by=created_by
    )
    Instalment.objects.bulk_create(
        Instalment(plan=plan, due_date=due, amount=amount) for due, amount in rows
    )
    _audit(
        "payment_plan.created",
        invoice,
        created_by,
        plan=plan.pk,
        instalments=[[due.isoformat(), str(amount)] for due, amount in rows],
    )
    return plan


def instalments_even(
    *, amount: Decimal, count: int, first_due: dt.date, months_between: int = 1
) -> list[tuple[dt.date, Decimal]]:
    """Equal instalments a month (or ``months_between``) apart, the odd cents first."""
    if not 1 <= count <= 60:
        raise ValidationError("Choose between 1 and 60 instalments.")
    if amount <= 0:
        raise ValidationError("Nothing is left to pay on this invoice.")
    if count > amount * 100:
        raise ValidationError(f"{amount} cannot be split into {count} instalments.")
    return [
        (add_months(first_due, i * months_between), part)
        for i, part in enumerate(split_evenly(amount, count))
    ]


@transaction.atomic
def payment_plan_cancel(*, plan: PaymentPlan, cancelled_by) -> PaymentPlan:
    plan = (
        PaymentPlan.objects.select_for_update(of=("self",))
        .select_related("invoice__department")
        .get(pk=plan.pk)
    )
    if plan.cancelled_at is not None:
        raise ValidationError("This payment plan is already cancelled.")
    plan.cancelled_at = timezone.now()
    plan.save(update_fields=["cancelled_at"])
    _audit("payment_plan.cancelled", plan.invoice, cancelled_by, plan=plan.pk)
    return plan


# --- The item list -------------------------------------------------------------------------

ITEM_FIELDS = (
    "name",
    "code",
    "is_ivls_analysis",
    "price",
    "vat_rate",
    "yields",
    "unit",
    "active",
)


def _item_apply(item: Item, changes: dict) -> list[str]:
    """Set the given ITEM_FIELDS on ``item``; the names of those whose value changed."""
    if "yields" in changes:
        changes = {**changes, "yields": list(changes["yields"] or [])}
    return fields_apply(item, ITEM_FIELDS, changes)


def _item_save(item: Item) -> None:
    """Save, turning the database's Code uniqueness into a clear error."""
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError as exc:
        if "item_code_unique_in_list" not in str(exc):
            raise
        raise ValidationError(
            {"code": f"Another item in this item list has the Code {item.code}."}
        ) from exc


@transaction.atomic
def item_create(
    *,
    item_list: ItemList,
    kind: str,
    name: str,
    code: str = "",
    price: Decimal = Decimal("0.00"),
    vat_rate: VatRate | None = None,
    is_ivls_analysis: bool = False,
    yields=(),
    unit: str = "",
    active: bool = True,
    created_by,
    department: Department | None = None,
) -> Item:
    """An item kept by a person (not created by matching). The audit event names the fields
    set to other than their defaults."""
    item = Item(item_list=item_list, kind=kind, auto_created=False)
    changed = _item_apply(
        item,
        {
            "name": name,
            "code": code,
            "is_ivls_analysis": is_ivls_analysis,
            "price": price,
            "vat_rate": vat_rate,
            "yields": yields,
            "unit": unit,
            "active": active,
        },
    )
    _item_save(item)
    audit_event_write(
        action="item.created",
        department=department,
        actor_user=created_by,
        subject=item,
        data={"fields": changed},
    )
    return item


@transaction.atomic
def item_update(*, item: Item, updated_by, department: Department | None = None, **changes) -> Item:
    """Change any of ITEM_FIELDS. Saved by a person, the item is no longer one "created by
    matching, waiting for a name and a price"."""
    # Diffed against the stored row, locked: the caller's object may already carry the new
    # values (a bound ModelForm writes them onto its instance while it validates).
    item = row_locked(item)
    changed = _item_apply(item, changes)
    item.auto_created = False
    _item_save(item)
    audit_event_write(
        action="item.changed",
        department=department,
        actor_user=updated_by,
        subject=item,
        data={"fields": changed},
    )
    return item
