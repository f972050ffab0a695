from django.contrib import admin

from billing.models import (
    BillingSettings,
    Instalment,
    Invoice,
    InvoiceLine,
    Item,
    ItemList,
    Payment,
    PaymentPlan,
    Refund,
    VatRate,
)


@admin.register(VatRate)
class VatRateAdmin(admin.ModelAdmin):
    list_display = ["name", "rate"]
    search_fields = ["name"]


@admin.register(ItemList)
class ItemListAdmin(admin.ModelAdmin):
    list_display = ["name", "prices_include_vat"]
    search_fields = ["name"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "kind",
        "item_list",
        "price",
        "vat_rate",
        "is_ivls_analysis",
        "auto_created",
        "active",
    ]
    list_filter = ["item_list", "kind", "is_ivls_analysis", "auto_created", "active", "vat_rate"]
    search_fields = ["name", "code"]
    list_editable = ["is_ivls_analysis"]
    fields = [
        "item_list",
        "kind",
        "name",
        "code",
        "price",
        "vat_rate",
        "is_ivls_analysis",
        "yields",
        "unit",
        "auto_created",
        "active",
    ]


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    list_display = ["department", "hide_zero_price_lines"]
    list_filter = ["hide_zero_price_lines"]
    search_fields = ["department__name"]


# Invoices, payments and plans change only through billing.services (numbering, locks, the
# audit trail): the admin shows them read-only.


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ["description", "quantity", "unit_price", "vat_rate", "net", "vat", "gross"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(_ReadOnlyAdmin):
    list_display = ["__str__", "department", "client", "status", "issued_at", "total_gross"]
    list_filter = ["department", "status", "kind"]
    search_fields = ["number", "client__last_name", "client__first_name"]
    list_select_related = ["department", "client"]
    raw_id_fields = ["client", "credits"]
    inlines = [InvoiceLineInline]


@admin.register(Payment)
class PaymentAdmin(_ReadOnlyAdmin):
    list_display = ["invoice", "method", "amount", "paid_at", "recorded_by"]
    list_filter = ["method"]
    search_fields = ["invoice__number", "reference"]
    list_select_related = ["invoice", "recorded_by"]


@admin.register(Refund)
class RefundAdmin(_ReadOnlyAdmin):
    list_display = ["payment", "amount", "reason", "at"]
    list_select_related = ["payment"]


class InstalmentInline(admin.TabularInline):
    model = Instalment
    fields = ["due_date", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PaymentPlan)
class PaymentPlanAdmin(_ReadOnlyAdmin):
    list_display = ["invoice", "created_at", "cancelled_at"]
    list_select_related = ["invoice"]
    inlines = [InstalmentInline]
