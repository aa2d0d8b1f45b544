from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from servicedesk import views

admin.site.site_header = "Servicedesk administration"
admin.site.site_title = "Servicedesk admin"
admin.site.index_title = "Configuration"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("agent/", include(("incidents.urls_agent", "agent"))),
    path("portal/", include(("incidents.urls_portal", "portal"))),
    path("admin/", admin.site.urls),
    path("api/v1/attachments/<int:attachment_id>/download/", views.attachment_download,
         name="attachment-download"),
    path("api/v1/", include("servicedesk.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
