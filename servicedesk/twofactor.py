"""Two-factor sign-in: an authenticator app's code (TOTP, django-otp) after the password, backup codes, and
the sign-in policy that makes it compulsory for agents, managers or admins.

How a sign-in goes (servicedesk.views_twofactor):

1. The password form (`/login/`, also `/admin/login/`) checks the password as before (django-axes counts
   the failures). A user who has a confirmed authenticator, or whose role the policy requires to have one,
   is NOT signed in: the session only remembers who passed the password (`PENDING`: user id, backend, the
   password's session hash, when) and the browser goes to `/login/code/` or `/login/enrol/`.
2. The code page takes a 6-digit TOTP code (one 30-second step of drift either way; a code already used
   is refused: django-otp keeps the last step used, and the device row is locked while it is checked) or
   one of the backup codes (each works once: deleting its row is the check). A wrong code is a failed
   sign-in for django-axes (`user_login_failed`), counted with the wrong passwords, so the username is
   locked after LOGIN_FAILURE_LIMIT of them together.
3. Only then `django.contrib.auth.login()` runs and the session is marked `VERIFIED`.

`SecondFactorMiddleware` holds the line for every other way a session can become signed in (another
login view, a sign-in provider, a session that predates the policy): a signed-in session whose state is not
settled is checked once, and one that still owes its second step is turned back into a pending sign-in
before any view sees it, so agent pages, the portal, admin and the session-authenticated API all see an
anonymous visitor. An OpenID Connect sign-in (the session's authentication backend is the OIDC one) counts as
two-factor when OIDC_TRUSTS_IDP_MFA is on (off by default): the company's provider asks for its own second
factor.

Settled states are kept in the session, so a signed-in request costs no query here: only the policy's
version is compared, read from the cache (POLICY_CACHE_SECONDS), so tightening the policy reaches sessions
signed in without a second factor within that time.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model, logout
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import urlencode
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from servicedesk.errors import InvalidInput, NotAllowed
from servicedesk.models import SignInPolicy
from servicedesk.roles import Role, role_of
from servicedesk.services import audit_record

# Session keys.
PENDING = "sd_2fa_pending"  # the password passed, the second step not yet
STATE = "sd_2fa"  # how this signed-in session stands (below)
POLICY_VERSION = "sd_2fa_policy"  # the policy version a NOT_NEEDED session was judged by
USER_VERSION = "sd_2fa_user"  # the user's own version (user_version) a NOT_NEEDED session was judged by
NEW_CODES = "sd_2fa_new_codes"  # backup codes to show once
ENROL_DEVICE = "sd_2fa_enrol_device"  # the id of the authenticator this session is setting up
PROVED_AT = "sd_password_at"  # when this session last proved the password (a sign-in, or typed again)

# Session states.
VERIFIED = "verified"  # the second step passed in this session
TRUSTED_IDP = "idp"  # signed in through OpenID Connect, whose provider does its own MFA
NOT_NEEDED = "none"  # no authenticator and none required (as of POLICY_VERSION)
OWED = "owed"  # signed in by some path that skipped the second step: the middleware takes it back

# What a user owes after the password.
CODE = "code"
ENROL = "enrol"

BACKUP_CODE_COUNT = 10
USER_VERSION_CACHE_KEY = "sd-2fa-user:{}"
POLICY_CACHE_KEY = "sd-signin-policy"
POLICY_CACHE_SECONDS = 60
TOTP_PATTERN = re.compile(r"\d{6}")
BACKUP_PATTERN = re.compile(r"[a-z2-7]{8}")


# --- the policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    agents: bool = False
    managers: bool = False
    admins: bool = False
    version: str = "0"

    def requires(self, role) -> bool:
        return {Role.AGENT: self.agents, Role.MANAGER: self.managers, Role.ADMIN: self.admins}.get(role, False)


def policy_current() -> Policy:
    """The sign-in policy, from the cache (shared by every web process when the cache is Redis)."""
    cached = cache.get(POLICY_CACHE_KEY)
    if cached is not None:
        return Policy(**cached)
    row = SignInPolicy.objects.order_by("id").first()
    policy = Policy() if row is None else Policy(
        agents=row.require_agents, managers=row.require_managers, admins=row.require_admins,
        version=row.updated_at.isoformat())
    cache.set(POLICY_CACHE_KEY, asdict(policy), POLICY_CACHE_SECONDS)
    return policy


def policy_forget() -> None:
    """After the policy changed: the next request reads it again (this process at once, others through
    the shared cache; a per-process cache within POLICY_CACHE_SECONDS)."""
    cache.delete(POLICY_CACHE_KEY)


def user_version(user_id) -> str:
    """The user's two-factor version, from the cache: it changes (user_version_bump) whenever what the user owes
    at sign-in may have changed (groups, superuser or staff flags, an authenticator set up or reset, a group of
    theirs deleted); the role kept in the cache is kept under it too (servicedesk.roles.role_of). A session
    judged "no second factor needed" keeps the value it was judged by; another value makes the middleware judge
    it again. Unknown (never bumped, or evicted from the cache): a new value is stored, so every session judged
    by an older one is judged again once, never let through on a stale value."""
    key = USER_VERSION_CACHE_KEY.format(user_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, uuid.uuid4().hex, timeout=None)
        version = cache.get(key)
    return version


def user_version_bump(user_id) -> None:
    """What this user owes may have changed: their sessions judged before are judged again at their next request.
    Now, and once more when the transaction commits, so a request judging the session in between (still seeing
    the old rows) cannot keep the new value with a stale verdict."""
    def bump():
        cache.set(USER_VERSION_CACHE_KEY.format(user_id), uuid.uuid4().hex, timeout=None)

    bump()
    transaction.on_commit(bump)


def _on_user_saved(sender, instance, created, update_fields=None, **kwargs):
    if created:
        _on_user_created_or_deleted(sender, instance)
        return
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a sign-in's last_login changes nothing owed
    user_version_bump(instance.pk)


def _on_groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """user.groups.add/remove/clear, or group.user_set...: a role may have changed."""
    if action == "pre_clear" and reverse:
        instance._sd_cleared_users = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        user_ids = [instance.pk]
    elif action == "post_clear":
        user_ids = getattr(instance, "_sd_cleared_users", [])
    else:
        user_ids = pk_set or []
    for user_id in user_ids:
        user_version_bump(user_id)


def required_for(user, policy: Policy | None = None) -> bool:
    return (policy or policy_current()).requires(role_of(user))


# --- devices --------------------------------------------------------------------------------------


def totp_device_of(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_step_for(user) -> str | None:
    """What the user owes after the password: CODE, ENROL, or None (signed in by the password)."""
    if has_second_factor(user):
        return CODE
    if required_for(user):
        return ENROL
    return None


def normalise(code: str) -> str:
    return re.sub(r"[\s-]+", "", code or "").lower()


def format_backup_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def qr_data_uri(text: str) -> str:
    """An SVG QR code of `text` as a data: URI, for an <img> under the Content-Security-Policy."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def secret_text(device: TOTPDevice) -> str:
    """The secret as people type it into an app: base32 in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def totp_enrol_start(*, user, session=None) -> TOTPDevice:
    """The authenticator this browser session is setting up.

    The one this session started, while it is unconfirmed (reloading the page keeps the key already scanned);
    otherwise a new secret, and the user's other unconfirmed authenticators are deleted. So a secret is only
    ever shown to the one session that can confirm it: another session (someone else who has the password,
    say) starting a set-up gets its own key and ends this one's, never learns the key the user confirms.
    The device's id is kept in `session` (ENROL_DEVICE) for `totp_enrol_confirm`."""
    if session is not None and session.get(ENROL_DEVICE):
        device = TOTPDevice.objects.filter(id=session[ENROL_DEVICE], user=user, confirmed=False).first()
        if device is not None:
            return device
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    if session is not None:
        session[ENROL_DEVICE] = device.id
    return device


def _backup_codes_replace(user) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = []
    while len(codes) < BACKUP_CODE_COUNT:
        code = StaticToken.random_token()
        if code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return [format_backup_code(code) for code in codes]


@transaction.atomic
def totp_enrol_confirm(*, user, device_id: int | None, code: str) -> list[str]:
    """Confirm the authenticator this session set up (`device_id`, from totp_enrol_start) with a code it shows;
    returns the new backup codes (shown once). InvalidInput naming `code` when the code is not right, or the
    set-up was ended meanwhile (another session started one)."""
    device = TOTPDevice.objects.select_for_update().filter(id=device_id, user=user, confirmed=False).first() \
        if device_id else None
    if device is None:
        raise InvalidInput("This set-up was ended (it was started again somewhere else, or has expired): scan "
                           "the new code below and enter the code the app shows.", field="code")
    token = normalise(code)
    if not TOTP_PATTERN.fullmatch(token) or not device.verify_token(token):
        raise InvalidInput("That code is not the one the app shows now: check the app's clock and try the "
                           "current 6-digit code.", field="code")
    TOTPDevice.objects.filter(user=user).exclude(id=device.id).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _backup_codes_replace(user)
    # The user's other sessions, signed in with the password alone, now owe the code (the middleware takes
    # them back at their next request); the one that set it up is marked verified by the view.
    user_version_bump(user.pk)
    audit_record(actor=user, action="twofactor.enabled", obj=user, object_repr=user.get_username(),
                 changes={"after": {"two_factor": "authenticator app", "backup_codes": len(codes)}})
    return codes


class SecondFactorLocked(Exception):
    """The username is locked out (django-axes): the code was not checked."""


def second_factor_verify(*, user, code: str, request=None) -> str | None:
    """Check a code from the sign-in: "totp" or "backup" when it is right (and now used up), else None.

    With `request` (every sign-in and profile page), the username's lockout is read, the code checked and a
    wrong one counted as a failed sign-in for django-axes (`user_login_failed` with the account's own name),
    all while the user's authenticator row is locked (SELECT ... FOR UPDATE): codes sent at once are judged
    one after the other, each seeing the failures of those before, so none past LOGIN_FAILURE_LIMIT is ever
    checked. Raises SecondFactorLocked when the username is locked. Without `request` nothing is counted.

    The lock also keeps two requests with the same TOTP code from both passing (django-otp then stores the
    step used in last_t and refuses that step and earlier ones). A backup code is used up by deleting its
    row: only the request whose DELETE removed it passes."""
    from axes.handlers.proxy import AxesProxyHandler
    from django.contrib.auth.signals import user_login_failed

    token = normalise(code)
    credentials = {"username": user.get_username()}
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("id").first()
        if device is None:
            return None  # no second factor: nothing to check (backup codes alone are not one)
        if request is not None and AxesProxyHandler.is_locked(request, credentials):
            raise SecondFactorLocked
        method = None
        if TOTP_PATTERN.fullmatch(token):
            if device.verify_token(token):
                method = "totp"
        elif BACKUP_PATTERN.fullmatch(token):
            deleted, _ = StaticToken.objects.filter(device__user=user, device__confirmed=True, token=token).delete()
            if deleted:
                method = "backup"
        if method is None and request is not None:
            # Counted before the row lock is released: the next code waiting for it sees this failure.
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        return method


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def backup_codes_regenerate(*, user) -> list[str]:
    """New backup codes for a user who has just proved a second factor; the old ones stop working."""
    codes = _backup_codes_replace(user)
    audit_record(actor=user, action="twofactor.backup_codes", obj=user, object_repr=user.get_username(),
                 changes={"after": {"backup_codes": len(codes)}})
    return codes


@transaction.atomic
def twofactor_disable(*, user) -> None:
    """The user turns two-factor sign-in off (after proving a code). Refused while the policy requires it."""
    if required_for(user):
        raise NotAllowed("Two-factor sign-in is required for your role: it cannot be turned off. An "
                         "administrator can reset it if you lost your phone.", field="code")
    _devices_delete(user)
    audit_record(actor=user, action="twofactor.disabled", obj=user, object_repr=user.get_username(),
                 changes={"before": {"two_factor": "authenticator app"}, "after": {"two_factor": None}})


@transaction.atomic
def twofactor_reset(*, user, actor) -> int:
    """An administrator removes a user's authenticator and backup codes (a lost phone); audited. The user
    signs in with the password alone next time, or is asked to set it up again if the policy requires it."""
    removed = _devices_delete(user)
    user_version_bump(user.pk)
    audit_record(actor=actor, action="twofactor.reset", obj=user, object_repr=user.get_username(),
                 changes={"before": {"devices": removed}, "after": {"devices": 0}})
    return removed


def _devices_delete(user) -> int:
    totp, _ = TOTPDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.filter(user=user).count()
    StaticDevice.objects.filter(user=user).delete()
    return totp + static


# --- the sign-in in the session ---------------------------------------------------------------------


OIDC_BACKEND = "servicedesk.oidc.OIDCBackend"


def trusted_idp(session) -> bool:
    """Signed in through OpenID Connect, whose provider is trusted to ask for its own second factor. Read from
    the backend login() itself recorded for this sign-in, not from a session key of ours that survives a later
    login() of the same user by another path."""
    return bool(settings.OIDC_TRUSTS_IDP_MFA) and session.get(BACKEND_SESSION_KEY) == OIDC_BACKEND


def pending_start(request, user, *, backend: str, next_url: str, step: str) -> None:
    """Remember that `user` passed the password in this browser (a new session key: nothing from before
    carries over), without signing them in."""
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk, "backend": backend, "hash": user.get_session_auth_hash(), "at": int(time.time()),
        "next": next_url, "step": step,
    }


def pending_of(request):
    """(user, pending data) of the sign-in waiting for its second step in this session, or None when there is
    none, it is older than TWO_FACTOR_STEP_MINUTES, the user was deactivated or the password changed since."""
    data = request.session.get(PENDING)
    if not isinstance(data, dict):
        return None
    if time.time() - data.get("at", 0) > settings.TWO_FACTOR_STEP_MINUTES * 60:
        pending_clear(request)
        return None
    user = get_user_model().objects.filter(pk=data.get("user"), is_active=True).first()
    if user is None or not constant_time_compare(user.get_session_auth_hash(), data.get("hash", "")):
        pending_clear(request)
        return None
    return user, data


def pending_clear(request) -> None:
    request.session.pop(PENDING, None)


def signin_complete(request, user, *, backend: str, method: str | None) -> None:
    """Sign the user in now; `method` ("totp", "backup") when a second factor was proved in this request."""
    pending_clear(request)
    request._sd_2fa_method = method
    from django.contrib.auth import login

    login(request, user, backend=backend)


def password_recent(session) -> bool:
    """Did this session sign in, or type the password again, within TWO_FACTOR_STEP_MINUTES? Setting up an
    authenticator from the profile needs it, so a browser left signed in cannot be given someone else's."""
    return time.time() - session.get(PROVED_AT, 0) <= settings.TWO_FACTOR_STEP_MINUTES * 60


def password_proved(session) -> None:
    session[PROVED_AT] = int(time.time())


def session_mark_verified(request) -> None:
    """The signed-in user proved a second factor in this session (set it up, or entered a code)."""
    request.session[STATE] = VERIFIED
    request.session.pop(POLICY_VERSION, None)
    request.session.pop(USER_VERSION, None)


def session_versions(session) -> tuple[str, str]:
    """(policy version, user version) for the signed-in user of this session: read BEFORE judging the session,
    so that a change while it is judged leaves a version that no longer matches."""
    return policy_current().version, user_version(session.get(SESSION_KEY))


def session_mark_not_needed(request, versions: tuple[str, str] | None = None) -> None:
    policy_version, user_ver = versions or session_versions(request.session)
    request.session[STATE] = NOT_NEEDED
    request.session[POLICY_VERSION] = policy_version
    request.session[USER_VERSION] = user_ver


def _on_user_logged_in(sender, request, user, **kwargs):
    """Settle the new session's state at every django.contrib.auth.login(), whichever view called it.
    API token requests call the signal too, without signing a session in: left alone."""
    session = getattr(request, "session", None)
    if session is None or session.get(SESSION_KEY) != str(user.pk):
        return
    password_proved(session)
    if session.get(STATE) in (VERIFIED, TRUSTED_IDP) and not getattr(request, "_sd_2fa_method", None):
        # The same user's session already proved it (a token asked for from a signed-in browser, or login()
        # again): nothing to take back. Another user's login() starts from a flushed session.
        return
    versions = session_versions(session)
    if getattr(request, "_sd_2fa_method", None):
        session_mark_verified(request)
    elif trusted_idp(session):
        session[STATE] = TRUSTED_IDP
    elif second_step_for(user) is None:
        session_mark_not_needed(request, versions)
    else:
        session[STATE] = OWED


def _on_group_deleted(sender, instance, **kwargs):
    """A role group deleted (no m2m signal is sent for its members): everyone in it may have lost their role."""
    for user_id in instance.user_set.values_list("pk", flat=True):
        user_version_bump(user_id)
    from servicedesk.roles import forget_staff_choices

    forget_staff_choices()


def _on_group_renamed(sender, instance, raw=False, **kwargs):
    """Roles are group names: a group renamed (in admin) gives or takes a role from everyone in it."""
    if raw or instance.pk is None:
        return
    before = Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    if before is not None and before != instance.name:
        _on_group_deleted(sender, instance)


def _on_user_created_or_deleted(sender, instance, **kwargs):
    """A new account, or one deleted: whatever was kept under its id (a reused id after a database reset) is
    judged again."""
    user_version_bump(instance.pk)


user_logged_in.connect(_on_user_logged_in, dispatch_uid="servicedesk.twofactor")
pre_delete.connect(_on_group_deleted, sender=Group, dispatch_uid="servicedesk.twofactor.group_deleted")
pre_save.connect(_on_group_renamed, sender=Group, dispatch_uid="servicedesk.twofactor.group_renamed")
post_delete.connect(_on_user_created_or_deleted, sender=get_user_model(), dispatch_uid="servicedesk.twofactor.user_deleted")
post_save.connect(_on_user_saved, sender=get_user_model(), dispatch_uid="servicedesk.twofactor.user_saved")
m2m_changed.connect(_on_groups_changed, sender=get_user_model().groups.through,
                    dispatch_uid="servicedesk.twofactor.groups_changed")


def step_url(step: str, next_url: str = "") -> str:
    url = reverse("login-code" if step == CODE else "login-enrol")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


# Where a session being taken back may still go as an anonymous visitor (the API answers 401 by itself).
_OPEN_PREFIXES = ("/login/", "/logout/", "/api/", "/static/", "/healthz", "/favicon.ico")


class SecondFactorMiddleware:
    """A signed-in session that owes its second step is taken back before any view runs (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME in request.COOKIES and SESSION_KEY in request.session:
            response = self._hold(request)
            if response is not None:
                return response
        return self.get_response(request)

    def _hold(self, request):
        session = request.session
        state = session.get(STATE)
        if state in (VERIFIED, TRUSTED_IDP):
            return None
        # Two cache reads, no query: judged again when the policy or the user changed since (promoted into a
        # role the policy covers, an authenticator set up in another session, ...).
        versions = session_versions(session)
        if state == NOT_NEEDED and (session.get(POLICY_VERSION), session.get(USER_VERSION)) == versions:
            return None
        user = request.user
        if not user.is_authenticated:
            return None
        if trusted_idp(session):
            session[STATE] = TRUSTED_IDP
            return None
        step = second_step_for(user)
        if step is None:
            session_mark_not_needed(request, versions)
            return None
        backend = session.get(BACKEND_SESSION_KEY) or settings.AUTHENTICATION_BACKENDS[-1]
        next_url = request.get_full_path() if request.method == "GET" else ""
        logout(request)
        pending_start(request, user, backend=backend, next_url=next_url, step=step)
        if request.path.startswith(_OPEN_PREFIXES):
            return None
        return redirect(step_url(step, next_url))
