from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from pims import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz/", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="pims/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("department/", views.department_switch, name="department_switch"),
    path("settings/", views.settings_index, name="settings_index"),
    path("admin/", admin.site.urls),
    path("", include("patients.urls")),
    path("", include("labs.urls")),
    path("", include("billing.urls")),
    path("", include("integrations.urls")),
]
# JSON, not HTML, on the plug-in API (/api/ivls/); the usual pages elsewhere.
handler400 = "integrations.ivls.api.handler400"
handler500 = "integrations.ivls.api.handler500"
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
