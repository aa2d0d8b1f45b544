"""Sign-in with OpenID Connect (mozilla-django-oidc): the company's identity provider vouches for a person.

Switched on by settings (OIDC_RP_CLIENT_ID, see settings.py and docs/sign-in.md "OpenID Connect"). The flow:
the login page's button leads to `oidc_start`, which redirects to the provider's authorization endpoint with
a fresh state, nonce and PKCE challenge kept in our session; the provider signs the person in and sends the
browser back to `oidc_callback` with a code; the callback checks the state against the session, exchanges the
code (with the PKCE verifier) for tokens, verifies the id token (signature from the provider's JWKS,
algorithm, nonce, issuer, audience, expiry), reads the userinfo claims and finds or creates the account.

Which account a sign-in gets (`oidc_user_sign_in`), the rule against account takeover:
1. the account bound to the provider's (issuer, sub) pair (ExternalIdentity), whatever email it now claims;
2. otherwise, only with an email address the provider says it verified (email_verified true; or absent and
   OIDC_ASSUME_EMAIL_VERIFIED=1): no account has that address -> a new requester account is created
   (OIDC_CREATE_USER) under a new username derived from the claims, never an existing one; exactly one
   account has it and it is a requester's, not yet bound to another person of this provider -> it is bound
   and used; an agent's, manager's, admin's, staff or superuser account -> refused: an admin binds it by
   hand (Admin > Users > Single sign-on identities), since whoever controls an address at the provider
   would otherwise get that account's rights;
3. groups in the OIDC_GROUPS_CLAIM claim set the role and teams through servicedesk.directory.

A successful sign-in marks the session `sd_signin_method = "oidc"` (sign-out reads it; two-factor sign-in trusts
the session's authentication backend, which login() records, not this key). Every
refusal is a page saying why, with the way back to the local sign-in, which keeps working.
"""

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from servicedesk.directory import directory_sync
from servicedesk.models import ExternalIdentity, Profile
from servicedesk.roles import STAFF_ROLES, Role, ensure_roles, role_of
from servicedesk.services import audit_record

logger = logging.getLogger(__name__)

BACKEND = "servicedesk.oidc.OIDCBackend"
SESSION_METHOD_KEY = "sd_signin_method"
SESSION_ID_TOKEN_KEY = "oidc_id_token"  # noqa: S105 - a session key name, not a secret


class SignInRefused(Exception):
    """The provider signed the person in, but we do not: `message` says why, to them."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message, self.status = message, status


class ProviderUnavailable(SignInRefused):
    def __init__(self, message: str):
        super().__init__(message, status=503)


# --- the provider's configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    end_session_endpoint: str


def _discovery(*, fresh: bool) -> dict:
    url = settings.OIDC_OP_DISCOVERY_URL
    if not url:
        return {}
    key = f"oidc-discovery:{url}"
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except (requests.RequestException, ValueError) as exc:
        logger.warning("OpenID Connect: the provider's discovery document %s could not be read: %s", url, exc)
        raise ProviderUnavailable(
            "The single sign-on provider cannot be reached right now, so signing in with it is not possible. "
            "Try again in a few minutes, or sign in with your Servicedesk username and password.") from exc
    cache.set(key, document, settings.OIDC_DISCOVERY_CACHE_SECONDS)
    return document


def provider(*, fresh: bool = False) -> Provider:
    """The provider's endpoints: each set explicitly in settings, or else from its discovery document.
    `fresh` re-reads the document (a sign-in starts by checking the provider is there)."""
    explicit = {
        "authorization_endpoint": settings.OIDC_OP_AUTHORIZATION_ENDPOINT,
        "token_endpoint": settings.OIDC_OP_TOKEN_ENDPOINT,
        "userinfo_endpoint": settings.OIDC_OP_USER_ENDPOINT,
        "jwks_uri": settings.OIDC_OP_JWKS_ENDPOINT,
        "end_session_endpoint": settings.OIDC_OP_LOGOUT_ENDPOINT,
    }
    needed = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    document = _discovery(fresh=fresh) if (fresh or not all(explicit[k] for k in needed)) else {}
    issuer = settings.OIDC_OP_ISSUER or str(document.get("issuer", "")).rstrip("/")
    if settings.OIDC_OP_ISSUER and document.get("issuer") \
            and str(document["issuer"]).rstrip("/") != settings.OIDC_OP_ISSUER:
        # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was fetched for.
        raise ProviderUnavailable("The single sign-on provider's configuration names another issuer; "
                                  "ask your administrator to check OIDC_OP_ISSUER.")
    values = {name: explicit[name] or str(document.get(name, "")) for name in explicit}
    missing = [name for name in needed if not values[name]]
    if missing:
        raise ProviderUnavailable(f"The single sign-on provider's configuration lacks {', '.join(missing)}; "
                                  "ask your administrator to check the OIDC_OP_* settings.")
    return Provider(issuer=issuer, **values)


# --- the authentication backend ----------------------------------------------------------------


class OIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with the provider's endpoints read at sign-in, the id token's issuer
    and audience checked, and the account found by `oidc_user_sign_in`.

    It takes part only in the OIDC callback: its authenticate() has no username/password parameters, so
    Django's authenticate() skips it for every password sign-in, and it never reaches out to the provider
    then. When OIDC is switched off, sessions it opened end (get_user finds no one).
    """

    def __init__(self, *args, **kwargs):  # the provider's endpoints are read per sign-in, not at start
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.id_token = None

    def authenticate(self, request, *, nonce, code_verifier=None):
        self.provider = provider()
        self.OIDC_OP_TOKEN_ENDPOINT = self.provider.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = self.provider.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = self.provider.jwks_uri
        if not nonce:
            raise SuspiciousOperation("the sign-in kept no nonce")
        return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)  # signature, algorithm, expiry, nonce
        if "nonce" in kwargs:  # the id token (a signed userinfo answer has no nonce to check)
            audience = payload.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.OIDC_RP_CLIENT_ID not in audiences:
                raise SuspiciousOperation("the id token was issued for another client (aud)")
            if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
                raise SuspiciousOperation("the id token was issued to another party (azp)")
            if self.provider.issuer and str(payload.get("iss", "")).rstrip("/") != self.provider.issuer:
                raise SuspiciousOperation("the id token comes from another issuer (iss)")
            if not payload.get("sub") or "exp" not in payload:
                raise SuspiciousOperation("the id token lacks sub or exp")
        return payload

    def store_tokens(self, access_token, id_token):
        self.id_token = id_token  # the callback keeps it in the session once signed in (logout's hint)

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if str(userinfo.get("sub", "")) != str(payload["sub"]):
            # OpenID Connect Core 5.3.2: a userinfo answer about someone else must not be used.
            raise SuspiciousOperation("the userinfo answer is about another person (sub)")
        # Some providers put groups only in the id token (Entra ID), others only in userinfo.
        claims = {**payload, **userinfo}
        return oidc_user_sign_in(issuer=str(payload.get("iss", "")).rstrip("/") or self.provider.issuer,
                                 subject=str(payload["sub"]), claims=claims)

    def get_user(self, user_id):
        if not settings.OIDC_ENABLED:
            return None
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


# --- which account -------------------------------------------------------------------------------


def _email_verified(claims: dict) -> bool:
    # Entra ID sends no email_verified; its optional claim xms_edov says the address's domain is verified.
    verified = claims.get("email_verified", claims.get("xms_edov"))
    if verified is None:
        return settings.OIDC_ASSUME_EMAIL_VERIFIED
    # Some providers send the string "true" rather than the JSON boolean.
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


def _names(claims: dict) -> tuple[str, str]:
    first, last = claims.get("given_name") or "", claims.get("family_name") or ""
    if not (first or last) and claims.get("name"):
        first, _, last = str(claims["name"]).partition(" ")
    return str(first)[:150], str(last)[:150]


def _groups(claims: dict) -> list[str] | None:
    """The person's groups; None when the provider says they are too many to send (Entra ID's "overage":
    the claim is named in _claim_names instead), and an absent claim is no groups."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None:
        names = claims.get("_claim_names")
        if isinstance(names, dict) and settings.OIDC_GROUPS_CLAIM in names:
            return None
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    raise SignInRefused(f"The provider's {settings.OIDC_GROUPS_CLAIM!r} claim is not a list of groups; ask your "
                        "administrator to check OIDC_GROUPS_CLAIM.")


def _is_privileged(user) -> bool:
    return user.is_staff or user.is_superuser or role_of(user) in STAFF_ROLES


_USERNAME_CHARS = re.compile(r"[^\w.@+-]", re.ASCII)


def username_candidates(claims: dict):
    """Usernames to try for a new account, in order: from preferred_username, else the email's local part,
    cleaned to Django's allowed characters; then the same with -2, -3, ... appended."""
    raw = str(claims.get("preferred_username") or "") or str(claims.get("email") or "").split("@")[0]
    base = _USERNAME_CHARS.sub("", raw.strip())[:140].strip(".-") or "user"
    yield base
    for n in range(2, 1000):
        yield f"{base}-{n}"


def _user_create(claims: dict, email: str):
    """Insert a new user under a username no one has: never get_or_create, which would hand over an
    existing account whose username the provider's claims happen to name."""
    User = get_user_model()
    first, last = _names(claims)
    for username in username_candidates(claims):
        try:
            with transaction.atomic():
                user = User(username=username, email=email, first_name=first, last_name=last)
                user.set_unusable_password()  # signs in through the provider only, unless an admin sets one
                user.save(force_insert=True)
        except IntegrityError:
            continue
        Profile.objects.create(user=user)
        user.groups.add(ensure_roles()[Role.REQUESTER.value])
        return user
    raise SignInRefused("No free username could be found for your account; ask your administrator.")


@transaction.atomic
def oidc_user_sign_in(*, issuer: str, subject: str, claims: dict):
    """The account a provider's verified claims sign in to, made or bound as the module docstring says;
    names, email, role and teams updated from the claims. Raises SignInRefused with the reason."""
    User = get_user_model()
    now = timezone.now()
    email = str(claims.get("email") or "").strip()
    verified = bool(email) and _email_verified(claims)
    groups = _groups(claims)
    allowed = settings.OIDC_ALLOWED_EMAIL_DOMAINS
    if allowed and email.rpartition("@")[2].lower() not in allowed:
        raise SignInRefused(f"Sign-in with the email address {email or '(none)'} is not allowed here: only "
                            f"addresses at {', '.join(allowed)}.")
    identity = ExternalIdentity.objects.select_for_update().select_related("user").filter(
        issuer=issuer, subject=subject).first()
    if identity is not None:
        user = identity.user
        if not user.is_active:
            raise SignInRefused("Your Servicedesk account is disabled. Ask your service desk team if this is "
                                "a mistake.")
        changed = {}
        first, last = _names(claims)
        for field, value in (("first_name", first), ("last_name", last)):
            if value and getattr(user, field) != value:
                changed[field] = value
        if verified and email.lower() != user.email.lower():
            # A new address moves over only when no other account has it.
            if not User.objects.filter(email__iexact=email).exclude(id=user.id).exists():
                changed["email"] = email
        if changed:
            before = {field: getattr(user, field) for field in changed}
            for field, value in changed.items():
                setattr(user, field, value)
            user.save(update_fields=list(changed))
            audit_record(actor=None, action="user.updated", obj=user,
                         changes={"source": "oidc", "before": before, "after": changed})
        identity.last_sign_in_at = now
        identity.save(update_fields=["last_sign_in_at"])
    else:
        if not email:
            raise SignInRefused("The single sign-on provider did not give your email address, which Servicedesk "
                                "needs; ask your administrator (the \"email\" scope and claim).")
        if not verified:
            raise SignInRefused(f"The single sign-on provider has not verified your email address {email}, so "
                                "it cannot be used to sign you in. Verify it with your provider and try again.")
        matches = list(User.objects.filter(email__iexact=email).select_for_update()[:2])
        if len(matches) > 1:
            raise SignInRefused(f"More than one Servicedesk account has the email address {email}; ask your "
                                "service desk team to bind the right one to your single sign-on account.")
        if matches:
            user = matches[0]
            if not user.is_active:
                raise SignInRefused("Your Servicedesk account is disabled. Ask your service desk team if this "
                                    "is a mistake.")
            if _is_privileged(user):
                logger.warning("OpenID Connect: %s at %s claims %s, which belongs to the %s account %s: not "
                               "bound automatically", subject, issuer, email, role_of(user), user.username)
                raise SignInRefused(
                    f"An existing Servicedesk account already uses the email address {email}. For its safety it "
                    "is not joined to your single sign-on account automatically: ask an administrator to bind it "
                    "(Admin > Users > Single sign-on identities), or sign in with its username and password.")
            if ExternalIdentity.objects.filter(user=user, issuer=issuer).exists():
                raise SignInRefused(f"The Servicedesk account with the email address {email} belongs to another "
                                    "person of your single sign-on provider; ask your service desk team.")
            action = "user.sso_bound"
        else:
            if not settings.OIDC_CREATE_USER:
                raise SignInRefused(f"There is no Servicedesk account for {email} yet; ask your service desk "
                                    "team to create one.")
            user = _user_create(claims, email)
            action = "user.created"
        ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject, last_sign_in_at=now)
        audit_record(actor=None, action=action, obj=user,
                     changes={"source": "oidc", "issuer": issuer, "subject": subject, "email": email})
    if groups is None:
        logger.warning("OpenID Connect: %s is in too many groups for the %r claim; role and teams left as they "
                       "are", user.get_username(), settings.OIDC_GROUPS_CLAIM)
    else:
        directory_sync(user, groups, role_map=settings.OIDC_GROUP_ROLES, team_map=settings.OIDC_GROUP_TEAMS,
                       source="oidc")
    return user


# --- views ---------------------------------------------------------------------------------------


def refusal(request, message: str, status: int):
    return render(request, "registration/oidc_error.html",
                  {"message": message, "button_label": settings.OIDC_BUTTON_LABEL}, status=status)


def _require_enabled():
    if not settings.OIDC_ENABLED:
        raise Http404("OpenID Connect sign-in is not switched on")


class OIDCStartView(OIDCAuthenticationRequestView):
    """The login page's button: checks the provider answers, then sends the browser to it."""

    def __init__(self, **kwargs):  # mozilla's reads the endpoint from settings at construction
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request):
        _require_enabled()
        try:
            # Fresh: a provider that went away is told here, on our page, not as the browser's own error.
            self.OIDC_OP_AUTH_ENDPOINT = provider(fresh=True).authorization_endpoint
        except SignInRefused as exc:
            return refusal(request, exc.message, exc.status)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


@require_GET
def oidc_callback(request):
    """Where the provider sends the browser back: state checked, code exchanged, id token verified."""
    _require_enabled()
    states = request.session.get("oidc_states")
    states = states if isinstance(states, dict) else {}
    state = request.GET.get("state", "")
    entry = states.pop(state, None) if state else None
    if entry is not None:
        # Each state answers once: dropped before anything else, so a replayed answer finds nothing.
        request.session["oidc_states"] = states
        request.session.save()
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET["error"]
        return refusal(request, f"The single sign-on provider did not sign you in: {reason[:300]}", 403)
    if entry is None or not request.GET.get("code"):
        logger.warning("OpenID Connect: a callback with an unknown state was refused")
        return refusal(request, "This sign-in answer does not belong to a sign-in started in this browser (its "
                                "state does not match), so it was refused. Start again from the sign-in page.",
                       400)
    next_url = request.session.get("oidc_login_next")
    backend = OIDCBackend()
    try:
        user = backend.authenticate(request, nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier"))
    except SignInRefused as exc:
        return refusal(request, exc.message, exc.status)
    except (SuspiciousOperation, jwt.PyJWTError) as exc:  # PyJWT's: an expired or not yet valid id token
        logger.warning("OpenID Connect: an answer from the provider failed verification: %s", exc)
        return refusal(request, f"The single sign-on answer could not be verified ({exc}), so it was refused. "
                                "Start again from the sign-in page.", 400)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        logger.warning("OpenID Connect: the provider refused the code exchange or userinfo: %s", exc)
        return refusal(request, f"The single sign-on provider refused to complete the sign-in (HTTP {status}). "
                                "Start again from the sign-in page.", 502)
    except (requests.RequestException, ValueError) as exc:
        logger.warning("OpenID Connect: the provider could not be reached to complete a sign-in: %s", exc)
        return refusal(request, "The single sign-on provider cannot be reached right now, so the sign-in could not "
                                "be completed. Try again in a few minutes, or sign in with your Servicedesk "
                                "username and password.", 503)
    except IntegrityError:  # the same person's first sign-in twice at once: the other one made the account
        return refusal(request, "You were being signed in twice at once. Start again from the sign-in page.", 409)
    if user is None:
        return refusal(request, "The single sign-on provider's answer could not be used to sign you in.", 403)
    auth.login(request, user, backend=BACKEND)
    request.session[SESSION_METHOD_KEY] = "oidc"
    if settings.OIDC_LOGOUT_FROM_PROVIDER and backend.id_token:
        request.session[SESSION_ID_TOKEN_KEY] = backend.id_token
    return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))


def end_session_url(request) -> str:
    """Where sign-out sends the browser to end the provider's session too ("" to stay with ours)."""
    if not (settings.OIDC_ENABLED and settings.OIDC_LOGOUT_FROM_PROVIDER
            and request.session.get(SESSION_METHOD_KEY) == "oidc"):
        return ""
    try:
        endpoint = provider().end_session_endpoint
    except SignInRefused:
        return ""  # the provider is away: our session still ends
    if not endpoint:
        return ""
    params = {"client_id": settings.OIDC_RP_CLIENT_ID,
              "post_logout_redirect_uri": request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))}
    if request.session.get(SESSION_ID_TOKEN_KEY):
        params["id_token_hint"] = request.session[SESSION_ID_TOKEN_KEY]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


class LogoutView(auth_views.LogoutView):
    """Django's sign-out (POST), then, for an OIDC session with OIDC_LOGOUT_FROM_PROVIDER, the provider's."""

    def post(self, request, *args, **kwargs):
        provider_logout = end_session_url(request)  # read before the session is flushed
        response = super().post(request, *args, **kwargs)
        if not provider_logout:
            return response
        # Not a redirect: the sign-out form's answer may only lead to this site (CSP form-action 'self'), so
        # a page of ours moves on to the provider (a meta refresh, with a link should that be turned off).
        return render(request, "registration/oidc_signed_out.html", {"url": provider_logout})


def start_url(next_url: str = "") -> str:
    url = reverse("oidc_start")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
