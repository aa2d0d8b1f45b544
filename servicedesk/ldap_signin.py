"""Sign-in with the company directory over LDAP (OpenLDAP, Active Directory), through django-auth-ldap.

Switched on by LDAP_SERVER_URI (settings put `DirectoryLDAPBackend` between axes' LockoutBackend and
Django's ModelBackend, so a locked-out username is refused before any bind and local accounts keep
working). The backend is configured from the project's LDAP_* settings (docs/sign-in.md), not from
django-auth-ldap's own AUTH_LDAP_* names, so the environment speaks one language.

At each sign-in, first the directory, outside any database transaction: the username is looked up with the
service account (LDAP_BIND_DN) under LDAP_USER_SEARCH_BASE with LDAP_USER_FILTER, the password is checked
by binding as that DN, and the groups are read (LDAP_GROUP_SEARCH_BASE, LDAP_GROUP_TYPE). A directory that
stops answering half-way refuses the sign-in with nothing written. Then, in one transaction: the account
bound to the entry (ExternalIdentity "ldap:<LDAP_DIRECTORY_LABEL>" + the entry's entryUUID / objectGUID) is
used, or created on the first sign-in (unusable local password, a profile, the binding, an audit entry);
its names and email are copied from the directory, and servicedesk.directory.directory_sync sets the role
and teams from LDAP_GROUP_ROLES and LDAP_GROUP_TEAMS. An existing account the directory did not create
(same username, no binding) is never taken over: refused, audited, and the next backend is asked.

An unreachable directory is logged once per attempt (a WARNING naming the server) and the next backend
is asked: local accounts still sign in. This module imports python-ldap: it is only loaded when
LDAP_SERVER_URI is set (the `ldap` extra).
"""

import logging
import uuid

import ldap
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_auth_ldap.backend import LDAPBackend, ldap_error
from django_auth_ldap.config import (
    ActiveDirectoryGroupType,
    GroupOfNamesType,
    GroupOfUniqueNamesType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
    NestedGroupOfNamesType,
    PosixGroupType,
)

from servicedesk.directory import directory_sync, group_key

logger = logging.getLogger(__name__)

SOURCE = "ldap"

# LDAP_GROUP_TYPE -> (django-auth-ldap group type, the group filter used when LDAP_GROUP_FILTER is empty).
GROUP_TYPES = {
    "groupOfNames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
    "nestedGroupOfNames": (NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": (GroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
    "posixGroup": (PosixGroupType, "(objectClass=posixGroup)"),
    "activeDirectory": (ActiveDirectoryGroupType, "(objectClass=group)"),
    "nestedActiveDirectory": (NestedActiveDirectoryGroupType, "(objectClass=group)"),
}


def auth_ldap_settings() -> dict:
    """django-auth-ldap's settings (without the AUTH_LDAP_ prefix) built from the LDAP_* settings."""
    options = {
        # Active Directory answers searches at the domain root with referrals python-ldap would chase
        # anonymously; OpenLDAP sends none. Off for both.
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_NETWORK_TIMEOUT: settings.LDAP_TIMEOUT,
        ldap.OPT_TIMEOUT: settings.LDAP_TIMEOUT,
    }
    if settings.LDAP_CA_FILE:
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        options[ldap.OPT_X_TLS_CACERTFILE] = settings.LDAP_CA_FILE
        # Last: makes the TLS options above take effect on this connection.
        options[ldap.OPT_X_TLS_NEWCTX] = 0
    group_type, default_filter = GROUP_TYPES[settings.LDAP_GROUP_TYPE]
    config = {
        "SERVER_URI": settings.LDAP_SERVER_URI,
        "BIND_DN": settings.LDAP_BIND_DN,
        "BIND_PASSWORD": settings.LDAP_BIND_PASSWORD,
        "START_TLS": settings.LDAP_START_TLS,
        "CONNECTION_OPTIONS": options,
        # entryUUID is an operational attribute: asked for by name (Active Directory's objectGUID comes with *).
        "USER_SEARCH": LDAPSearch(settings.LDAP_USER_SEARCH_BASE, ldap.SCOPE_SUBTREE, settings.LDAP_USER_FILTER,
                                  attrlist=["*", "entryUUID"]),
        "USER_ATTR_MAP": {field: attr for field, attr in (
            ("first_name", settings.LDAP_ATTR_FIRST_NAME),
            ("last_name", settings.LDAP_ATTR_LAST_NAME),
            ("email", settings.LDAP_ATTR_EMAIL),
        ) if attr},
        "ALWAYS_UPDATE_USER": True,
        "MIRROR_GROUPS": False,
        "FIND_GROUP_PERMS": False,
        "CACHE_TIMEOUT": 0,
    }
    if settings.LDAP_GROUP_SEARCH_BASE:
        config["GROUP_SEARCH"] = LDAPSearch(settings.LDAP_GROUP_SEARCH_BASE, ldap.SCOPE_SUBTREE,
                                            settings.LDAP_GROUP_FILTER or default_filter)
        config["GROUP_TYPE"] = group_type(name_attr="cn")
    return config


def identity_issuer() -> str:
    """The ExternalIdentity issuer of this directory's people: "ldap:" + LDAP_DIRECTORY_LABEL (a name that stays
    when servers or URIs change)."""
    return f"{SOURCE}:{settings.LDAP_DIRECTORY_LABEL}"


def identity_subject(dn: str, attrs) -> str:
    """A directory entry's lasting id: OpenLDAP's entryUUID, Active Directory's objectGUID (as the GUID string
    AD tools show), else the DN (case-folded), which changes when the entry is renamed or moved."""
    attrs = attrs or {}
    for value in attrs.get("entryUUID") or ():
        if value:
            return str(value).strip().lower()
    for value in attrs.get("objectGUID") or ():
        # 16 bytes; django-auth-ldap hands over a str when they happened to decode as UTF-8.
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        if len(raw) == 16:
            return str(uuid.UUID(bytes_le=raw))
    return group_key(dn)


class DirectoryCollision(Exception):
    """A directory entry signing in under the username of a desk account that is not bound to it."""


class DirectoryLDAPBackend(LDAPBackend):
    """django-auth-ldap's backend, configured from LDAP_*, syncing role and teams at every sign-in.

    Which account (the rule against takeover, as for OpenID Connect): the one bound to the directory entry
    (ExternalIdentity: issuer identity_issuer(), subject identity_subject()), made when the directory created
    the account. An existing account that is not bound to this entry is never taken over because its username
    matches the directory's: the sign-in is refused here (audited, logged) and the next backend (local
    accounts) is asked. An admin binds such an account by hand (Admin > Users, or manage.py directory_bind).
    """

    @property
    def default_settings(self):
        return auth_ldap_settings()

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LDAP_SERVER_URI:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_or_build_user(self, username, ldap_user):
        from django.contrib.auth import get_user_model

        from servicedesk.models import ExternalIdentity

        issuer, subject = identity_issuer(), identity_subject(ldap_user.dn, ldap_user.attrs)
        ldap_user._sd_identity = (issuer, subject)
        identity = (ExternalIdentity.objects.select_for_update().select_related("user")
                    .filter(issuer=issuer, subject=subject).first())
        if identity is not None:
            ldap_user._sd_bound = identity
            return identity.user, False
        User = get_user_model()
        taken = User.objects.filter(username__iexact=username).order_by("id").first()
        if taken is not None:
            ldap_user._sd_collision = taken
            raise DirectoryCollision(username)
        ldap_user._sd_built = True
        return User(username=username.lower()), True

    def authenticate_ldap_user(self, ldap_user, password):
        username = ldap_user._username
        # 1. Everything the directory has to say, before any database transaction: the search for the DN and
        #    its attributes (service account), the bind as that DN with the password, the groups. No database
        #    connection or row lock is held while a slow directory answers.
        try:
            ldap_user._authenticate_user_dn(password)
            ldap_user._check_requirements()
            attrs = ldap_user.attrs
            dns, names = set(), set()
            if settings.LDAP_GROUP_SEARCH_BASE:
                # The DN and the group's name (cn) can be used in LDAP_GROUP_ROLES / _TEAMS; a key with "="
                # matches DNs only (servicedesk.directory.group_keys).
                dns, names = set(ldap_user.group_dns), set(ldap_user.group_names)
        except ldap_user.AuthenticationFailed as exc:
            logger.debug("ldap: %r not signed in: %s", username, exc)
            return None
        except ldap.LDAPError as exc:
            # Unreachable, or the groups could not be read: no sign-in with a role the directory may no longer
            # give.
            _log_ldap_error(exc, username=username)
            return None
        if attrs is None:
            return None
        # 2. The account, in one transaction and without calling the directory again (attributes and groups
        #    are already read): created, or found by its binding, names copied, role and teams synced.
        try:
            with transaction.atomic():
                ldap_user._get_or_create_user()
                user = ldap_user._user
                issuer, subject = ldap_user._sd_identity
                if getattr(ldap_user, "_sd_built", False):
                    _account_created(user, ldap_user.dn, issuer=issuer, subject=subject)
                else:
                    ldap_user._sd_bound.last_sign_in_at = timezone.now()
                    ldap_user._sd_bound.save(update_fields=["last_sign_in_at"])
                directory_sync(user, dns, names=names, role_map=settings.LDAP_GROUP_ROLES,
                               team_map=settings.LDAP_GROUP_TEAMS, source=SOURCE)
                return user
        except DirectoryCollision:
            _collision_refused(ldap_user._sd_collision, username=username, dn=ldap_user.dn,
                               identity=ldap_user._sd_identity)
            return None
        except IntegrityError:
            # The same person's first sign-in twice at once: the other one created the account.
            logger.warning("ldap: %r was being signed in twice at once; this attempt is refused", username)
            return None


def _collision_refused(user, *, username: str, dn: str, identity: tuple[str, str]) -> None:
    """Outside the rolled-back transaction: the refusal stays on record."""
    from servicedesk.services import audit_record

    issuer, subject = identity
    logger.warning("ldap: directory user %s (%s) collides with local account %s, which is not bound to that "
                   "directory entry: refused; an admin can bind it (manage.py directory_bind %s)",
                   username, dn, user.get_username(), user.get_username())
    audit_record(actor=None, action="user.directory_collision", obj=user,
                 changes={"source": SOURCE, "dn": dn, "issuer": issuer, "subject": subject,
                          "superuser": user.is_superuser, "staff": user.is_staff})


def _account_created(user, dn: str, *, issuer: str, subject: str) -> None:
    """A person's first sign-in: what every account of the desk has (a profile, a role), its binding to the
    directory entry, and an audit entry."""
    from django.contrib.auth.models import Group

    from servicedesk.models import ExternalIdentity, Profile
    from servicedesk.roles import Role
    from servicedesk.services import audit_record

    user.groups.add(Group.objects.get_or_create(name=Role.REQUESTER.value)[0])
    Profile.objects.get_or_create(user=user)
    ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject, last_sign_in_at=timezone.now())
    audit_record(actor=None, action="user.created", obj=user,
                 changes={"before": {"email": "", "role": None},
                          "after": {"email": user.email, "role": Role.REQUESTER.value}, "via": SOURCE,
                          "dn": dn, "issuer": issuer, "subject": subject})
    logger.info("ldap: account %s created on first sign-in (%s)", user.get_username(), dn)


def _log_ldap_error(exc: Exception, *, username: str | None) -> None:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    what = detail.get("desc") or type(exc).__name__
    info = detail.get("info")
    logger.warning("ldap: sign-in of %r through %s failed: %s%s; trying the next backend (local accounts)",
                   username, settings.LDAP_SERVER_URI, what, f" ({info})" if info else "")


def _on_ldap_error(sender, context, user, request, exception, **kwargs):
    """django-auth-ldap's ldap_error signal: its own log line is a pprint of the exception; ours names
    the server and what happens next."""
    username = getattr(user, "username", None)
    if username is None and request is not None and request.method == "POST":
        username = request.POST.get("username")
    _log_ldap_error(exception, username=username)

ldap_error.connect(_on_ldap_error, sender=DirectoryLDAPBackend, dispatch_uid="servicedesk.ldap_signin.ldap_error")
