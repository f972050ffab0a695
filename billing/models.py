from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from patients.models import Consultation
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
    """A department's billing choices: its item list and how invoices print."""

    department = models.OneToOneField(
        Department, primary_key=True, on_delete=models.CASCADE, related_name="billing_settings"
    )
    item_list = models.ForeignKey(ItemList, on_delete=models.PROTECT, related_name="+")
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

    class Meta:
        ordering = ["added_at", "id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description} @ {self.unit_price}"
