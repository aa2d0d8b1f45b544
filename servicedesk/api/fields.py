"""Serializer fields for the API's naming conventions: people by username, teams/services/CIs by id or name."""

from django.contrib.auth import get_user_model
from rest_framework import serializers


class UsernameField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(**kwargs)


class IdOrNameField(serializers.RelatedField):
    """Accepts 12 or "Checkout"; answers {"id": 12, "name": "Checkout"}."""

    default_error_messages = {
        "does_not_exist": "No {model} with id or name {value!r}.",
        "invalid": "Give an id (number) or a name (text).",
    }

    def __init__(self, *, name_field: str = "name", **kwargs):
        self.name_field = name_field
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        queryset = self.get_queryset()
        model = queryset.model._meta.verbose_name
        if isinstance(data, dict):
            data = data.get("id", data.get(self.name_field))
        if isinstance(data, bool) or data in (None, ""):
            self.fail("invalid")
        try:
            if isinstance(data, int) or (isinstance(data, str) and data.isdigit()):
                return queryset.get(pk=int(data))
            return queryset.get(**{self.name_field: data})
        except queryset.model.DoesNotExist:
            self.fail("does_not_exist", model=model, value=data)

    def to_representation(self, value):
        return {"id": value.pk, "name": getattr(value, self.name_field)}


class UserRefField(UsernameField):
    """Writes take a username; reads answer {"username", "name"}."""

    def to_representation(self, obj):
        return {"username": obj.username, "name": obj.get_full_name() or obj.username}
