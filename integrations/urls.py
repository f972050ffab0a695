from django.urls import include, path, re_path

from integrations.ivls import api, views_settings
from integrations.ivls.urls import PREFIX

urlpatterns: list = [
    # The plug-in API (ICP-API.md); URL names "ivls_api:work_requests", ... "ivls_api:docs".
    path(PREFIX, include(("integrations.ivls.urls", "ivls_api"))),
    # Anything else under /api/ivls/ answers a JSON 404, never an HTML page or a redirect.
    re_path(r"^api/ivls/", api.api_not_found, name="ivls_api_not_found"),
]
# The IVLS settings page and the review queue's failed files (the department's admin UI).
urlpatterns += views_settings.urlpatterns
