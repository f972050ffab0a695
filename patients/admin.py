from django.contrib import admin

from patients.models import Client, Consultation, Patient, WeightMeasurement


class PatientInline(admin.TabularInline):
    model = Patient
    extra = 0
    fields = ["name", "species", "breed", "sex", "birth_date", "microchip", "deceased"]
    show_change_link = True


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "phone", "email", "city"]
    search_fields = ["last_name", "first_name", "phone", "email"]
    list_filter = ["city"]
    inlines = [PatientInline]


class WeightInline(admin.TabularInline):
    model = WeightMeasurement
    extra = 0
    fields = ["value", "unit", "measured_at", "recorded_by"]
    readonly_fields = ["recorded_by"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["name", "species", "breed", "sex", "birth_date", "client", "microchip"]
    search_fields = ["name", "microchip", "client__last_name", "client__first_name"]
    list_filter = ["species", "sex", "deceased"]
    autocomplete_fields = ["client"]
    inlines = [WeightInline]


@admin.register(Consultation)
class ConsultationAdmin(admin.ModelAdmin):
    list_display = ["started_at", "patient", "department", "vet", "status"]
    list_filter = ["department", "status"]
    search_fields = ["patient__name", "patient__client__last_name", "reason"]
    autocomplete_fields = ["patient", "vet"]
    date_hierarchy = "started_at"
