"""Sign-in with the company directory over LDAP (OpenLDAP, Active Directory), through django-auth-ldap.

Switched on by LDAP_SERVER_URI (settings put `DirectoryLDAPBackend` between axes' LockoutBackend and
Django's ModelBackend, so a locked-out username is refused before any bind and local accounts keep
working). The backend is configured from the project's LDAP_* settings (docs/sign-in.md), not from
django-auth-ldap's own AUTH_LDAP_* names, so the environment speaks one language.

At each sign-in: the username is looked up with the service account (LDAP_BIND_DN) under
LDAP_USER_SEARCH_BASE with LDAP_USER_FILTER, the password is checked by binding as that DN, the account
is created on first sign-in (unusable local password, a profile, an audit entry) and its names and email
copied from the directory, then its groups (LDAP_GROUP_SEARCH_BASE, LDAP_GROUP_TYPE) go through
servicedesk.directory.directory_sync, which sets the role and teams from LDAP_GROUP_ROLES and
LDAP_GROUP_TEAMS. All of that in one transaction: a directory that stops answering half-way leaves
nothing half-written, and the sign-in is refused.

An unreachable directory is logged once per attempt (a WARNING naming the server) and the next backend
is asked: local accounts still sign in. This module imports python-ldap: it is only loaded when
LDAP_SERVER_URI is set (the `ldap` extra).
"""

import logging

import ldap
from django.conf import settings
from django.db import transaction
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

from servicedesk.directory import directory_sync

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
        "USER_SEARCH": LDAPSearch(settings.LDAP_USER_SEARCH_BASE, ldap.SCOPE_SUBTREE, settings.LDAP_USER_FILTER),
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


class DirectoryLDAPBackend(LDAPBackend):
    """django-auth-ldap's backend, configured from LDAP_*, syncing role and teams at every sign-in."""

    @property
    def default_settings(self):
        return auth_ldap_settings()

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LDAP_SERVER_URI:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        ldap_user._sd_built = built
        return user, built

    def authenticate_ldap_user(self, ldap_user, password):
        try:
            with transaction.atomic():
                user = ldap_user.authenticate(password)
                if user is None:
                    # Refused, or django-auth-ldap caught a directory error after it had saved the account.
                    transaction.set_rollback(True)
                    return None
                dns, names = set(), set()
                if settings.LDAP_GROUP_SEARCH_BASE:
                    # The DN and the group's name (cn) can be used in LDAP_GROUP_ROLES / _TEAMS; a key with "="
                    # matches DNs only (servicedesk.directory.group_keys).
                    dns, names = set(ldap_user.group_dns), set(ldap_user.group_names)
                if getattr(ldap_user, "_sd_built", False):
                    _account_created(user, ldap_user.dn)
                directory_sync(user, dns, names=names, role_map=settings.LDAP_GROUP_ROLES,
                               team_map=settings.LDAP_GROUP_TEAMS, source=SOURCE)
                return user
        except ldap.LDAPError as exc:
            # The groups could not be read: no sign-in with a role the directory may no longer give.
            _log_ldap_error(exc, username=getattr(ldap_user, "_username", None))
            return None

def _account_created(user, dn: str) -> None:
    """A person's first sign-in: what every account of the desk has (a profile, a role) and an audit entry."""
    from django.contrib.auth.models import Group

    from servicedesk.models import Profile
    from servicedesk.roles import Role
    from servicedesk.services import audit_record

    user.groups.add(Group.objects.get_or_create(name=Role.REQUESTER.value)[0])
    Profile.objects.get_or_create(user=user)
    audit_record(actor=None, action="user.created", obj=user,
                 changes={"before": {"email": "", "role": None},
                          "after": {"email": user.email, "role": Role.REQUESTER.value}, "via": SOURCE,
                          "dn": dn})
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
