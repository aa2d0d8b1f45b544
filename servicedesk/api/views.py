from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from rest_framework import generics, mixins, viewsets

from servicedesk.api.permissions import IsStaffRole
from servicedesk.api.serializers import (
    ConfigurationItemSerializer,
    MeSerializer,
    OrganisationSerializer,
    ServiceSerializer,
    TeamSerializer,
    UserSerializer,
)
from servicedesk.models import ConfigurationItem, Organisation, Service, Team


class MeView(generics.RetrieveAPIView):
    serializer_class = MeSerializer

    def get_object(self):
        return get_user_model().objects.select_related("profile__organisation").prefetch_related("teams").get(
            pk=self.request.user.pk
        )


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    """People, for agents picking a requester or an assignee. `?q=` matches username, name or email."""

    serializer_class = UserSerializer
    permission_classes = [IsStaffRole]
    lookup_field = "username"

    def get_queryset(self):
        from django.db.models import Q

        qs = get_user_model().objects.filter(is_active=True).order_by("username")
        q = self.request.query_params.get("q", "").strip()
        if q:
            qs = qs.filter(
                Q(username__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q)
                | Q(email__icontains=q)
            )
        return qs


class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = OrganisationSerializer
    permission_classes = [IsStaffRole]
    queryset = Organisation.objects.all()
    filterset_fields = ["name"]


class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams with their members and lead: for agents (requesters get 403; their tickets name the group)."""

    serializer_class = TeamSerializer
    permission_classes = [IsStaffRole]
    queryset = Team.objects.select_related("lead").prefetch_related(
        Prefetch("members", queryset=get_user_model().objects.only("id", "username"))
    )
    filterset_fields = ["name"]


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ServiceSerializer
    queryset = Service.objects.select_related("owner_team")
    filterset_fields = ["name", "owner_team", "criticality", "active"]


class ConfigurationItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ConfigurationItemSerializer
    permission_classes = [IsStaffRole]
    queryset = ConfigurationItem.objects.select_related("owner_team").prefetch_related("services")
    filterset_fields = ["name", "kind", "state", "owner_team", "services"]
