"""The watchers of a ticket in the API, one pair of actions every ticket viewset adds by mixing this in:

    GET|POST /api/v1/<tickets>/{number}/watchers/          list; add {"user": "<username or email>"}
    DELETE   /api/v1/<tickets>/{number}/watchers/{username}/

Agents only (a requester gets 403 on their own ticket and 404 on anyone else's, as get_object() decides);
servicedesk.watchers does the writing."""

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from servicedesk.errors import InvalidInput
from servicedesk.models import Watcher
from servicedesk.roles import is_staff_role
from servicedesk.watchers import watcher_add, watcher_remove, watcher_user_find, watchers_of


class WatcherSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.SerializerMethodField()
    email = serializers.EmailField(source="user.email", read_only=True)
    added_by = serializers.CharField(source="added_by.username", read_only=True, default=None)

    class Meta:
        model = Watcher
        fields = ["username", "name", "email", "added_by", "created_at"]
        read_only_fields = fields

    def get_name(self, watcher) -> str:
        return watcher.user.get_full_name() or watcher.user.username


class WatcherAddSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=254, help_text="The username or email address of an active person.")


class WatchersActionMixin:
    """Adds `watchers` to a ticket viewset whose get_object() finds the ticket the caller may see."""

    def _watched_ticket(self, request):
        ticket = self.get_object()  # 404 for a ticket the caller may not see
        if not is_staff_role(request.user):
            raise PermissionDenied("Only agents can see or change a ticket's watchers.")
        return ticket

    @extend_schema(request=WatcherAddSerializer, responses={200: WatcherSerializer(many=True),
                                                            201: WatcherSerializer},
                   summary="Who besides the requester is mailed public replies (POST: add one; agents only)")
    @action(detail=True, methods=["get", "post"])
    def watchers(self, request, number=None):
        ticket = self._watched_ticket(request)
        if request.method == "GET":
            rows = watchers_of(ticket).select_related("added_by")
            return Response(WatcherSerializer(rows, many=True).data)
        data = WatcherAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        text = data.validated_data["user"].strip()
        user = watcher_user_find(text)
        if user is None:
            raise InvalidInput(f"user: nobody active has the username or email address {text!r}", field="user")
        existed = watchers_of(ticket).filter(user=user).exists()
        watcher = watcher_add(ticket=ticket, user=user, by=request.user)
        return Response(WatcherSerializer(watcher).data, status=status.HTTP_200_OK if existed
                        else status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None}, summary="Stop mailing this watcher (agents only)")
    @action(detail=True, methods=["delete"], url_path=r"watchers/(?P<username>[^/]+)")
    def watcher_remove(self, request, number=None, username=None):
        ticket = self._watched_ticket(request)
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not watcher_remove(ticket=ticket, user=user, by=request.user):
            raise Http404(f"{username} does not watch {ticket.number}.")
        return Response(status=status.HTTP_204_NO_CONTENT)
