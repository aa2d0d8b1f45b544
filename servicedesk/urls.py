from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

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
    # Both under the site's Content-Security-Policy: Swagger UI's start-up script is a separate request (split
    # view); Redoc builds its styles at run time (styled-components) and parses the schema in a blob: worker,
    # so its page alone allows injected styles and that worker. Neither allows an inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    path("api/redoc/", csp_update({"style-src": [UNSAFE_INLINE], "worker-src": [SELF, "blob:"]})(
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")), name="api-redoc"),
]
