from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from patients.models import Client, Consultation
from pims.models import Department


class VatRate(models.Model):
    name = models.CharField(max_length=50)
    rate = models.DecimalField(max_digits=5, decimal_places=2, help_text="Percent, e.g. 25.50")

    class Meta:
        ordering = ["rate"]

    def __str__(self) -> str:
        return f"{self.name} ({self.rate} %)"


class ItemList(models.Model):
    """A named catalog of what the practice sells; several departments may share one."""

    name = models.CharField(max_length=100)
    prices_include_vat = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    KIND_LAB = "lab"
    KIND_PROCEDURE = "procedure"
    KIND_MEDICINE = "medicine"
    KIND_SUPPLY = "supply"
    KINDS = [
        (KIND_LAB, "Laboratory"),
        (KIND_PROCEDURE, "Procedure"),
        (KIND_MEDICINE, "Medicine"),
        (KIND_SUPPLY, "Supply"),
    ]

    item_list = models.ForeignKey(ItemList, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=10, choices=KINDS)
    name = models.CharField(max_length=200)
    code = models.CharField(
        max_length=40, blank=True, help_text="Analyser code; unique within the item list."
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    vat_rate = models.ForeignKey(VatRate, null=True, blank=True, on_delete=models.PROTECT)
    is_ivls_analysis = models.BooleanField("IVLS analysis", default=False)
    # For an ordering item (e.g. a Chem 17): the analyte Codes its runs produce.
    yields = models.JSONField(default=list, blank=True)
    unit = models.CharField(max_length=30, blank=True, help_text="Unit for results entered by hand")
    auto_created = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item_list", "code"], condition=~Q(code=""), name="item_code_unique_in_list"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.code}]" if self.code else self.name


class BillingSettings(models.Model):
    """A department's billing choices: how its invoices print."""

    department = models.OneToOneField(
        Department, primary_key=True, on_delete=models.CASCADE, related_name="billing_settings"
    )
    hide_zero_price_lines = models.BooleanField(
        "Hide zero-price items on printed invoices", default=False
    )

    class Meta:
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return f"Billing settings of {self.department}"


class ConsultationLine(models.Model):
    """A charge on a consultation. Price and VAT are copied when added."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal("1"))
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when the line goes on an invoice (a draft included); lines added afterwards stay
    # null and go on the next invoice. Crediting an invoice sets its lines free again.
    invoice = models.ForeignKey(
        "Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="consultation_lines",
    )

    class Meta:
        ordering = ["added_at", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description} @ {self.unit_price}"


class InvoiceCounter(models.Model):
    """The last invoice number used by a department in a year.

    Finalising locks this row (select_for_update) while it takes the next number, so numbers
    are gapless: the number and the invoice commit together or not at all.
    """

    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["department", "year"], name="invoicecounter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.department_id}/{self.year}: {self.last_number}"


class Invoice(models.Model):
    """An invoice or a credit note of one department to one client.

    A draft can change; a final one never does (the services refuse): its number, lines and
    totals are what the client was given.
    """

    STATUS_DRAFT = "draft"
    STATUS_FINAL = "final"
    STATUSES = [(STATUS_DRAFT, "Draft"), (STATUS_FINAL, "Final")]
    KIND_INVOICE = "invoice"
    KIND_CREDIT_NOTE = "credit_note"
    KINDS = [(KIND_INVOICE, "Invoice"), (KIND_CREDIT_NOTE, "Credit note")]

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="invoices")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="invoices")
    consultations = models.ManyToManyField(Consultation, blank=True, related_name="invoices")
    kind = models.CharField(max_length=12, choices=KINDS, default=KIND_INVOICE)
    status = models.CharField(max_length=6, choices=STATUSES, default=STATUS_DRAFT)
    # "2026-000123": gapless per department and year; null (not "") until final, so a draft
    # plainly has no number.
    number = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    # Copied from the department's item list when the invoice is created.
    prices_include_vat = models.BooleanField(default=True)
    credits = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why a credit note")
    # The recipient as printed, frozen when the invoice is finalised.
    recipient = models.TextField(blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    total_net = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total_vat = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total_gross = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finalised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "number"],
                condition=Q(number__isnull=False),
                name="invoice_number_unique_in_department",
            ),
            models.UniqueConstraint(
                fields=["department", "year", "sequence"],
                condition=Q(sequence__isnull=False),
                name="invoice_sequence_unique",
            ),
            models.CheckConstraint(
                condition=Q(status="draft", number__isnull=True)
                | Q(status="final", number__isnull=False, issued_at__isnull=False),
                name="invoice_final_has_number",
            ),
            # One credit note per invoice: it credits the whole invoice.
            models.UniqueConstraint(
                fields=["credits"], condition=Q(credits__isnull=False), name="invoice_one_credit"
            ),
        ]
        indexes = [
            models.Index(fields=["department", "status", "issued_at"]),
            models.Index(fields=["department", "client"]),
        ]

    def __str__(self) -> str:
        label = self.get_kind_display()
        return f"{label} {self.number}" if self.number else f"Draft {label.lower()} #{self.pk}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.STATUS_DRAFT

    @property
    def is_credit_note(self) -> bool:
        return self.kind == self.KIND_CREDIT_NOTE


class InvoiceLine(models.Model):
    """One line of an invoice. Price and VAT are copied from the consultation line; the
    rounded net, VAT and gross are stored when the invoice is finalised."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    # The charge it was copied from. A final line is a frozen copy: should the charge go later
    # (set free by a credit note, then removed with its lab line), the line stays as printed.
    consultation_line = models.ForeignKey(
        ConsultationLine,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoice_lines",
    )
    item = models.ForeignKey(
        Item, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines"
    )
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal("1"))
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    net = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    vat = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    gross = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description} @ {self.unit_price}"


class Payment(models.Model):
    """Money received for an invoice. Append-only: a mistake is put right with a refund."""

    METHOD_CASH = "cash"
    METHOD_CARD = "card"
    METHOD_BANK_TRANSFER = "bank_transfer"
    METHODS = [
        (METHOD_CASH, "Cash"),
        (METHOD_CARD, "Card"),
        (METHOD_BANK_TRANSFER, "Bank transfer"),
    ]

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=15, choices=METHODS)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    paid_at = models.DateTimeField(default=timezone.now)
    reference = models.CharField(max_length=100, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["paid_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")
        ]
        indexes = [models.Index(fields=["paid_at"])]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount}"

    def save(self, *args, **kwargs):
        # Append-only: the ledger is the history, so an existing row is never rewritten.
        if self.pk is not None and not self._state.adding:
            raise ValueError("Payments are append-only: record a refund instead.")
        super().save(*args, **kwargs)


class Refund(models.Model):
    """Money given back from one payment. Append-only, never more than the payment left."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=300)
    at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("Refunds are append-only.")
        super().save(*args, **kwargs)


class PaymentPlan(models.Model):
    """An agreement to pay an invoice's balance in instalments."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payment_plans")
    # What the invoice had been paid (net of refunds) when the plan was agreed: payments
    # after that count towards the instalments, oldest first.
    paid_before = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(cancelled_at__isnull=True),
                name="paymentplan_one_active_per_invoice",
            )
        ]

    def __str__(self) -> str:
        return f"Payment plan for {self.invoice}"


class Instalment(models.Model):
    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="instalments")
    due_date = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["due_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="instalment_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.due_date}: {self.amount}"
