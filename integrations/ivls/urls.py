"""URLs of the plug-in API, mounted at /api/ivls/v1/ (ICP-API.md)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from integrations.ivls import api

PREFIX = "api/ivls/v1/"

endpoints = [
    path("work-requests/", api.WorkRequestListView.as_view(), name="work_requests"),
    path(
        "work-requests/<int:work_request_id>/ack/",
        api.WorkRequestAckView.as_view(),
        name="work_request_ack",
    ),
    path("results/", api.ResultFileView.as_view(), name="results"),
    path("results/<int:file_id>/", api.ResultFileDetailView.as_view(), name="result_detail"),
    path("reports/", api.ReportView.as_view(), name="reports"),
    path("status/", api.StatusView.as_view(), name="status"),
]

# The schema covers the plug-in API alone, whatever other DRF views the site has.
schema_urlconf = [path(PREFIX, include((endpoints, "ivls_api")))]

urlpatterns = [
    *endpoints,
    path(
        "schema/",
        SpectacularJSONAPIView.as_view(
            urlconf=schema_urlconf, authentication_classes=[], permission_classes=[]
        ),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="ivls_api:schema", authentication_classes=[], permission_classes=[]
        ),
        name="docs",
    ),
]
