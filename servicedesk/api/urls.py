from django.urls import include, path
from rest_framework.routers import DefaultRouter

from servicedesk.api import views
from servicedesk.registry import registry

router = DefaultRouter()
router.register("users", views.UserViewSet, basename="user")
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("teams", views.TeamViewSet, basename="team")
router.register("services", views.ServiceViewSet, basename="service")
router.register("configuration-items", views.ConfigurationItemViewSet, basename="configuration-item")
# Each practice app registers its own resources (servicedesk.registry.api_route in its plugin module).
for route in registry.routes:
    router.register(route.prefix, route.viewset, basename=route.basename)

urlpatterns = [
    path("auth/", include("servicedesk.api.auth_urls")),
    path("me/", views.MeView.as_view(), name="api-me"),
    # Plain views an app adds (servicedesk.registry.api_path), before the router's resources.
    *(path(p.route, p.view, name=p.name) for p in registry.paths),
    path("", include(router.urls)),
]
