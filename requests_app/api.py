"""The catalog API: the items a person may order, with their order forms. Read-only in this part of issue 8;
requests (POST /api/v1/requests/) come with the request lifecycle."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from requests_app.models import CatalogCategory, CatalogField, CatalogItem
from requests_app.selectors import catalog_items_for_api


class CategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = CatalogCategory
        fields = ["id", "name"]


class FormFieldSerializer(serializers.ModelSerializer):
    choices = serializers.ListField(
        source="choice_list", child=serializers.CharField(),
        help_text="The allowed values of a choice or multi_choice field, in order; empty for other types.")

    class Meta:
        model = CatalogField
        fields = ["name", "label", "type", "required", "choices", "help_text"]
        extra_kwargs = {
            "name": {"help_text": "The key of this field's answer."},
            "required": {"help_text": "An answer must be given (for boolean fields: true or false)."},
        }


class CatalogItemSerializer(serializers.ModelSerializer):
    category = CategoryRefSerializer()
    fields = FormFieldSerializer(many=True, help_text="The order form, in order.")
    requires_approval = serializers.BooleanField(help_text="Someone must approve an order before it is fulfilled.")
    automated = serializers.BooleanField(help_text="Fulfilled by an automated handler, with no one in the loop.")
    expected_delivery = serializers.CharField(
        help_text='How soon it is usually delivered, as people read it ("3 business days"); empty when not said.')

    class Meta:
        model = CatalogItem
        fields = ["id", "name", "description", "category", "fields", "requires_approval", "automated",
                  "expected_delivery"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="Catalog items I may order"),
    retrieve=extend_schema(summary="One catalog item with its order form (404 if I may not order it)"),
)
class CatalogItemViewSet(viewsets.ReadOnlyModelViewSet):
    """Active catalog items the caller may order (for everyone, for the caller's organisation, or for one of
    the caller's groups), with their order forms. Anyone signed in; an item the caller may not order answers
    404 like a missing one."""

    serializer_class = CatalogItemSerializer
    filterset_fields = ["category"]
    ordering_fields = ["name", "id"]

    def get_queryset(self):
        return catalog_items_for_api(self.request.user)
