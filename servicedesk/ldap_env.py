"""Checks of the LDAP_* settings made at start-up, without importing python-ldap unless LDAP is on.

settings.py reads the LDAP_* variables; when LDAP_SERVER_URI is set it calls `ldap_settings_check`, so a
missing package or a setting that cannot work stops the start-up with a message naming the setting,
rather than every directory sign-in failing later. servicedesk.ldap_signin builds django-auth-ldap's
configuration from the same settings.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# LDAP_GROUP_TYPE values (servicedesk.ldap_signin.GROUP_TYPES maps each to django-auth-ldap's class).
GROUP_TYPE_NAMES = ("groupOfNames", "nestedGroupOfNames", "groupOfUniqueNames", "posixGroup",
                    "activeDirectory", "nestedActiveDirectory")


def ldap_settings_check(*, server_uri: str, user_search_base: str, user_filter: str, group_search_base: str,
                        group_type: str, group_roles: dict, group_teams: dict, start_tls: bool, ca_file: str,
                        timeout: int) -> None:
    try:
        import django_auth_ldap  # noqa: F401
        import ldap  # noqa: F401
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LDAP_SERVER_URI is set but the LDAP packages are missing ({exc}): install the project's `ldap` "
            "extra (pip install -e '.[ldap]'; python-ldap builds against Debian's libldap2-dev and "
            "libsasl2-dev), or leave LDAP_SERVER_URI empty"
        ) from None
    if not server_uri.startswith(("ldap://", "ldaps://", "ldapi://")):
        raise ImproperlyConfigured(f"LDAP_SERVER_URI={server_uri!r} must start with ldap://, ldaps:// or ldapi://")
    if start_tls and server_uri.startswith("ldaps://"):
        raise ImproperlyConfigured("LDAP_START_TLS=1 with an ldaps:// LDAP_SERVER_URI: the connection is "
                                   "already TLS; use one or the other")
    if not user_search_base.strip():
        raise ImproperlyConfigured("LDAP_USER_SEARCH_BASE must be set when LDAP_SERVER_URI is, e.g. "
                                   "ou=people,dc=example,dc=org")
    if "%(user)s" not in user_filter:
        raise ImproperlyConfigured(f"LDAP_USER_FILTER={user_filter!r} must contain %(user)s, e.g. (uid=%(user)s) "
                                   "or, for Active Directory, (sAMAccountName=%(user)s)")
    if group_type not in GROUP_TYPE_NAMES:
        raise ImproperlyConfigured(f"LDAP_GROUP_TYPE={group_type!r} is not one of {', '.join(GROUP_TYPE_NAMES)}")
    if (group_roles or group_teams) and not group_search_base.strip():
        raise ImproperlyConfigured("LDAP_GROUP_ROLES / LDAP_GROUP_TEAMS need LDAP_GROUP_SEARCH_BASE: without "
                                   "it no group is read and the maps would never apply")
    if ca_file and not Path(ca_file).is_file():
        raise ImproperlyConfigured(f"LDAP_CA_FILE={ca_file!r} is not a file")
    if timeout < 1:
        raise ImproperlyConfigured("LDAP_TIMEOUT must be 1 second or more")
