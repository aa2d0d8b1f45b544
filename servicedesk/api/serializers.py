from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from servicedesk.api import fields
from servicedesk.models import Attachment, ConfigurationItem, Organisation, Service, Team, TimelineEntry
from servicedesk.roles import role_of
from servicedesk.selectors import timeline_data_visible_to

REF_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "description": "In requests: an id or a name; in responses: {id, name}.",
}
USER_SCHEMA = {
    "type": "object",
    "properties": {"username": {"type": "string"}, "name": {"type": "string"}},
    "description": "In requests: a username; in responses: {username, name}.",
}
IdOrNameField = extend_schema_field(REF_SCHEMA)(fields.IdOrNameField)
UserRefField = extend_schema_field(USER_SCHEMA)(fields.UserRefField)


class MeSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    name = serializers.SerializerMethodField()
    organisation = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name", "email", "role", "organisation", "teams"]

    def get_role(self, user) -> str:
        return role_of(user).value

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username

    def get_organisation(self, user) -> str | None:
        profile = getattr(user, "profile", None)
        return profile.organisation.name if profile and profile.organisation_id else None

    def get_teams(self, user) -> list[str]:
        return [t.name for t in user.teams.all()]


class UserSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name", "email"]

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "email_domain"]


class TeamSerializer(serializers.ModelSerializer):
    lead = UserRefField(required=False, allow_null=True)
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "description", "email", "lead", "members", "assignment_strategy"]


class ServiceSerializer(serializers.ModelSerializer):
    owner_team = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Service
        fields = ["id", "name", "description", "owner_team", "criticality", "default_impact", "active"]


class ConfigurationItemSerializer(serializers.ModelSerializer):
    owner_team = IdOrNameField(queryset=Team.objects.all(), required=False, allow_null=True)
    services = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Service.objects.all())

    class Meta:
        model = ConfigurationItem
        fields = ["id", "name", "kind", "state", "owner_team", "criticality", "services", "attributes"]


class TimelineEntrySerializer(serializers.ModelSerializer):
    """A timeline entry. `data` is filtered for the request's user (servicedesk.selectors): requesters get
    only the allow-listed lifecycle keys, never the desk's routing facts. Without a request in the context
    it shows the public keys only."""

    author = UserRefField(read_only=True)
    data = serializers.SerializerMethodField()

    class Meta:
        model = TimelineEntry
        fields = ["id", "kind", "internal", "author", "body", "data", "created_at"]

    def get_data(self, entry) -> dict:
        request = self.context.get("request")
        return timeline_data_visible_to(entry, request.user if request is not None else None)


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=20000)
    internal = serializers.BooleanField(default=False)


class AttachmentSerializer(serializers.ModelSerializer):
    uploaded_by = UserRefField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "filename", "mime_type", "size", "internal", "uploaded_by", "created_at", "url"]

    def get_url(self, obj) -> str:
        from django.urls import reverse

        request = self.context.get("request")
        path = reverse("attachment-download", kwargs={"attachment_id": obj.id})
        return request.build_absolute_uri(path) if request else path


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    internal = serializers.BooleanField(default=False)
