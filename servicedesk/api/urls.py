from django.urls import include, path
from rest_framework.routers import DefaultRouter

from incidents.api import IncidentViewSet
from servicedesk.api import views

router = DefaultRouter()
router.register("users", views.UserViewSet, basename="user")
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("teams", views.TeamViewSet, basename="team")
router.register("services", views.ServiceViewSet, basename="service")
router.register("configuration-items", views.ConfigurationItemViewSet, basename="configuration-item")
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = [
    path("auth/", include("servicedesk.api.auth_urls")),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("", include(router.urls)),
]
