from django.contrib import admin

from labs.models import LabPanel, LabRun, Referral, ReferralLine, Result, ResultDocument


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lab records change only through labs.services (state machine, revisions, audit)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LabPanel)
class LabPanelAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "item_list"]
    list_filter = ["item_list"]
    search_fields = ["name", "code"]
    filter_horizontal = ["items"]


class ReferralLineInline(admin.TabularInline):
    model = ReferralLine
    extra = 0
    fields = ["item", "added_by_matching", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    """Read-only here: referrals change only through the lab services (state machine)."""

    list_display = ["number", "department", "status", "sends_to_ivls", "created_at"]
    list_filter = ["department", "status", "sends_to_ivls"]
    search_fields = ["number", "consultation__patient__name"]
    inlines = [ReferralLineInline]


@admin.register(LabRun)
class LabRunAdmin(ReadOnlyAdmin):
    list_display = ["instrument", "diagnostic_set_id", "unit_key", "referral", "review_state"]
    list_filter = ["review_state", "instrument", "departments"]
    search_fields = ["diagnostic_set_id", "requisition_number"]


@admin.register(Result)
class ResultAdmin(ReadOnlyAdmin):
    list_display = ["code", "value_text", "unit", "flag", "referral", "run", "revision"]
    list_filter = ["flag", "is_current"]
    search_fields = ["code", "referral__number"]


@admin.register(ResultDocument)
class ResultDocumentAdmin(admin.ModelAdmin):
    list_display = ["diagnostic_set_id", "referral", "file_name", "size", "received_at"]
    search_fields = ["diagnostic_set_id", "file_name"]
    exclude = ["pdf"]  # PDFs are served through the membership-checked view, never a link

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
