from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/new/", views.invoice_new, name="invoice_new"),
    path(
        "consultations/<int:consultation_id>/invoice/",
        views.invoice_create_for_consultation,
        name="invoice_create_for_consultation",
    ),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:invoice_id>/invoice.pdf", views.invoice_pdf_view, name="invoice_pdf"),
    path("invoices/<int:invoice_id>/lines/", views.invoice_line_add, name="invoice_line_add"),
    path(
        "invoices/<int:invoice_id>/consultations/",
        views.invoice_consultation_add,
        name="invoice_consultation_add",
    ),
    path("invoices/<int:invoice_id>/finalise/", views.invoice_finalise, name="invoice_finalise"),
    path("invoices/<int:invoice_id>/discard/", views.invoice_discard, name="invoice_discard"),
    path("invoices/<int:invoice_id>/credit/", views.invoice_credit, name="invoice_credit"),
    path("invoices/<int:invoice_id>/payments/", views.payment_record, name="payment_record"),
    path("invoices/<int:invoice_id>/plan/", views.payment_plan_create, name="payment_plan_create"),
    path("invoice-lines/<int:line_id>/", views.invoice_line_update, name="invoice_line_update"),
    path(
        "invoice-lines/<int:line_id>/remove/",
        views.invoice_line_remove,
        name="invoice_line_remove",
    ),
    path("payments/<int:payment_id>/refund/", views.refund_record, name="refund_record"),
    path("payment-plans/", views.payment_plans, name="payment_plans"),
    path(
        "payment-plans/<int:plan_id>/cancel/",
        views.payment_plan_cancel,
        name="payment_plan_cancel",
    ),
    path("billing/reports/", views.report, name="reports"),
    path("billing/reports/<slug:kind>/", views.report, name="report"),
    path("billing/reports/<slug:kind>.csv", views.report_csv, name="report_csv"),
]
