from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("patients/", views.search, name="search"),
    path("clients/new/", views.client_create, name="client_create"),
    path("clients/<int:client_id>/", views.client_detail, name="client_detail"),
    path("clients/<int:client_id>/edit/", views.client_edit, name="client_edit"),
    path("clients/<int:client_id>/patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/weights/", views.weight_record, name="weight_record"),
    path(
        "patients/<int:patient_id>/consultations/",
        views.consultation_start,
        name="consultation_start",
    ),
]
