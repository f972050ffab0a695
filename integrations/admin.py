from django.contrib import admin

from integrations.ivls.models import (
    ExchangeLogEntry,
    InboundResultFile,
    IVLSConnection,
    WorkRequest,
)


@admin.register(IVLSConnection)
class IVLSConnectionAdmin(admin.ModelAdmin):
    """Passwords are set on the department's IVLS settings page, never here."""

    list_display = ["department", "enabled", "password_changed_at", "last_heard_at"]
    list_filter = ["enabled"]
    fields = ["department", "enabled", "password_changed_at", "last_heard_at"]
    readonly_fields = ["department", "enabled", "password_changed_at", "last_heard_at"]

    def has_add_permission(self, request):
        return False


@admin.register(WorkRequest)
class WorkRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "department", "referral", "action", "created_at", "delivered_at"]
    list_filter = ["department", "action"]
    search_fields = ["referral__number"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InboundResultFile)
class InboundResultFileAdmin(admin.ModelAdmin):
    list_display = ["id", "file_name", "unit_key", "status", "attempts", "received_at"]
    list_filter = ["status"]
    search_fields = ["file_name", "requisition_number", "diagnostic_set_id", "sha256"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ExchangeLogEntry)
class ExchangeLogEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "department", "method", "endpoint", "status_code", "outcome"]
    list_filter = ["department", "status_code", "method"]
    search_fields = ["endpoint", "requisition_number", "outcome"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
