"""API sign-in and the caller's own tokens: issue, list, revoke one, revoke the current, revoke all."""

from django.contrib.auth import authenticate, user_logged_in
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from servicedesk.signin import refused_lockout
from servicedesk.tokens import api_token_issue, api_token_revoke, api_tokens_of, api_tokens_revoke_all
from servicedesk.twofactor import ENROL, SecondFactorLocked, second_factor_verify, second_step_for


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    otp = serializers.CharField(
        required=False, allow_blank=True, max_length=20,
        help_text="For an account with two-factor sign-in: the code its authenticator app shows now, or one of "
                  "its backup codes (each works once). Without it, or wrong, the answer is 400 naming `otp`.")


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown only once.")
    expiry = serializers.DateTimeField(help_text="When the token stops working.")


class ApiTokenSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="token_key", read_only=True,
                               help_text="The token's first characters; names it in DELETE .../tokens/{id}/.")
    current = serializers.SerializerMethodField(help_text="The token this request was made with.")

    class Meta:
        model = AuthToken
        fields = ["id", "created", "expiry", "current"]

    def get_current(self, token) -> bool:
        auth = self.context["request"].auth
        return isinstance(auth, AuthToken) and auth.digest == token.digest


LOCKED_OUT = OpenApiResponse(
    inline_serializer("SignInLocked", {"detail": serializers.CharField()}),
    description="Too many failed sign-ins for this username (or from this address): `detail` says when to "
                "try again, and so does the Retry-After header (seconds).",
)


class SignInLocked(exceptions.Throttled):
    """429 with a `detail` saying when to retry; DRF adds Retry-After from `wait`."""

    def __init__(self, lockout):
        super().__init__(wait=lockout.seconds_left())
        self.detail = exceptions.ErrorDetail(lockout.message(), code="locked_out")


class TokenView(APIView):
    """Exchange a username and password for an API token (`Authorization: Token <token>`).

    The token expires (`expiry`); its owner can list and revoke it. After repeated wrong passwords (or
    wrong `otp` codes, counted together) the username is locked for a while whatever address the guesses
    come from: 429 saying when to retry. An account with two-factor sign-in also sends `otp`.
    """

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenRequestSerializer, auth=[], responses={
        200: TokenResponseSerializer, 400: OpenApiResponse(description="Missing field, wrong username or "
                                                                        "password (named on `password`), or a "
                                                                        "missing or wrong two-factor code "
                                                                        "(named on `otp`)."),
        429: LOCKED_OUT})
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The plain HttpRequest, so django-axes counts this attempt and can refuse it.
        http_request = request._request
        credentials = {"username": data.validated_data["username"], "password": data.validated_data["password"]}
        user = authenticate(http_request, **credentials)
        if getattr(http_request, "axes_locked_out", False):
            raise SignInLocked(refused_lockout(http_request, {"username": credentials["username"]}))
        if user is None or not user.is_active:
            raise serializers.ValidationError({"password": ["Unknown username or wrong password."]})
        self._second_factor(http_request, user, data.validated_data.get("otp", ""))
        token, plain = api_token_issue(user=user)
        # A successful sign-in: clears the username's failures (axes), records last_login.
        user_logged_in.send(sender=user.__class__, request=http_request, user=user)
        return Response(
            {"token": plain, "expiry": serializers.DateTimeField().to_representation(token.expiry)},
            status=status.HTTP_200_OK,
        )


    @staticmethod
    def _second_factor(http_request, user, otp: str) -> None:
        """The `otp` of an account with two-factor sign-in; a wrong one is a failed sign-in (django-axes)."""
        step = second_step_for(user)
        if step is None:
            return
        if step == ENROL:
            raise serializers.ValidationError({"otp": [
                "Two-factor sign-in is required for your role and not set up yet: set it up in the browser "
                "(your profile, Two-factor sign-in), then send its code as `otp`."]})
        if not otp.strip():
            raise serializers.ValidationError({"otp": [
                "This account uses two-factor sign-in: send the code its authenticator app shows now (or a "
                "backup code) as `otp`."]})
        # Locked and counted by the account's own name, not the typed one (a directory account answers to every
        # spelling of its username), while the authenticator's row is locked (concurrent guesses queue).
        credentials = {"username": user.get_username()}
        try:
            method = second_factor_verify(user=user, code=otp, request=http_request)
        except SecondFactorLocked:
            raise SignInLocked(refused_lockout(http_request, credentials)) from None
        if method is None:
            if getattr(http_request, "axes_locked_out", False):
                raise SignInLocked(refused_lockout(http_request, credentials))
            raise serializers.ValidationError({"otp": [
                "Wrong two-factor code, or one already used: send the code the app shows now, or an unused "
                "backup code."]})


class TokenListView(generics.ListAPIView):
    """The caller's API tokens that still work, newest first (never the tokens themselves)."""

    serializer_class = ApiTokenSerializer
    filter_backends = []

    def get_queryset(self):
        return api_tokens_of(self.request.user)


class TokenDetailView(APIView):
    """Revoke one of the caller's tokens by its `id`; 404 for anyone else's."""

    @extend_schema(responses={204: None, 404: OpenApiResponse(description="No such token of yours.")})
    def delete(self, request, token_id: str):
        if not api_token_revoke(user=request.user, token_key=token_id):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutView(APIView):
    """Revoke the token this request is made with."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        api_token_revoke(user=request.user, token_key=request.auth.token_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every token of the caller (a changed password does this too)."""

    @extend_schema(request=None, responses={200: inline_serializer("TokensRevoked", {"revoked": serializers.IntegerField()})})
    def post(self, request):
        return Response({"revoked": api_tokens_revoke_all(user=request.user, actor=request.user)})
