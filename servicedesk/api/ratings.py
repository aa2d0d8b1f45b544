"""The satisfaction rating of a ticket in the API, one action every ticket viewset adds by mixing this in:
`GET|POST /api/v1/<tickets>/{number}/rating/` (servicedesk.services.rating_give decides who and when)."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from servicedesk.api.fields import UserRefField
from servicedesk.models import Rating
from servicedesk.selectors import rating_of
from servicedesk.services import rating_give


class RatingSerializer(serializers.ModelSerializer):
    by = UserRefField(read_only=True)

    class Meta:
        model = Rating
        fields = ["number", "score", "comment", "by", "created_at", "updated_at"]
        read_only_fields = fields


class RatingGiveSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5, help_text="1 (poor) to 5 (excellent).")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RatingActionMixin:
    """Adds `rating` to a ticket viewset whose get_object() finds the ticket the caller may see."""

    @extend_schema(request=RatingGiveSerializer, responses={200: RatingSerializer, 201: RatingSerializer},
                   summary="My satisfaction rating of this ticket (POST: give or change it; the requester only, "
                           "once resolved)")
    @action(detail=True, methods=["get", "post"])
    def rating(self, request, number=None):
        ticket = self.get_object()
        given = rating_of(ticket)
        if request.method == "GET":
            if given is None:
                raise Http404("Not rated yet.")
            return Response(RatingSerializer(given, context={"request": request}).data)
        data = RatingGiveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rating = rating_give(ticket=ticket, by=request.user, **data.validated_data)
        return Response(RatingSerializer(rating, context={"request": request}).data,
                        status=status.HTTP_200_OK if given else status.HTTP_201_CREATED)
