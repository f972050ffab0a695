from django.urls import path

from labs import views, views_report, views_reports

app_name = "labs"

urlpatterns = [
    path(
        "consultations/<int:consultation_id>/",
        views.consultation_detail,
        name="consultation_detail",
    ),
    path("consultations/<int:consultation_id>/lab/", views.lab_section, name="lab_section"),
    path("consultations/<int:consultation_id>/lab/dialog/", views.lab_dialog, name="lab_dialog"),
    path("consultations/<int:consultation_id>/lab/options/", views.lab_options, name="lab_options"),
    path(
        "consultations/<int:consultation_id>/referrals/",
        views.referral_create,
        name="referral_create",
    ),
    path("referrals/<int:referral_id>/cancel/", views.referral_cancel, name="referral_cancel"),
    path(
        "referrals/<int:referral_id>/report.pdf",
        views_report.referral_report,
        name="referral_report_pdf",
    ),
    path("referral-lines/<int:line_id>/remove/", views.line_remove, name="line_remove"),
    path("referral-lines/<int:line_id>/result/", views.result_enter, name="result_enter"),
    path("referral-lines/<int:line_id>/history/", views.line_history, name="line_history"),
    path("lab-documents/<int:document_id>/", views.document_download, name="document_download"),
    path("patients/<int:patient_id>/results/", views.patient_results, name="patient_results"),
    path("lab/worklist/", views.worklist, name="worklist"),
    path("lab/review/", views.review_queue, name="review_queue"),
    path("lab/review/referrals/", views.referral_search, name="referral_search"),
    path("lab/review/runs/<int:run_id>/attach/", views.run_attach, name="run_attach"),
    path("lab/review/runs/<int:run_id>/confirm/", views.run_confirm, name="run_confirm"),
    path("lab/review/runs/<int:run_id>/dismiss/", views.run_dismiss, name="run_dismiss"),
    # One of the billing reports, at the path it always had: pims/urls.py includes these URLs
    # before billing's, so it wins over billing's reports/<kind>/.
    path(
        "billing/reports/uninvoiced-lab/",
        views_reports.uninvoiced_report,
        name="uninvoiced_report",
    ),
    path(
        "billing/reports/uninvoiced-lab.csv",
        views_reports.uninvoiced_report_csv,
        name="uninvoiced_report_csv",
    ),
    path("settings/lab-items/", views.item_list, name="item_list"),
    path("settings/lab-items/new/", views.item_edit, name="item_create"),
    path("settings/lab-items/<int:item_id>/", views.item_edit, name="item_edit"),
    path("settings/lab-panels/new/", views.panel_edit, name="panel_create"),
    path("settings/lab-panels/<int:panel_id>/", views.panel_edit, name="panel_edit"),
]
