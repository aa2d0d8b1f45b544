"""The company directory's say over people: which role and which teams a person's groups give them.

The one place group-to-role and group-to-team mapping lives, shared by every directory sign-in (LDAP /
Active Directory through servicedesk.ldap, OpenID Connect). Each sign-in passes the person's groups
(LDAP group DNs, group names, or an identity provider's group claim) to `directory_sync`, which makes
the person's role and the teams the directory manages match them, so a change in the directory
takes effect at the person's next sign-in.

The maps come from the environment as JSON objects (`parse_group_map`), group -> role name or group
-> team name, e.g. LDAP_GROUP_ROLES='{"cn=servicedesk-agents,ou=groups,dc=example,dc=org": "agent"}'.
Group names are compared case-insensitively and with the spaces around a DN's "," and "=" ignored,
because directories do not agree on how they spell a DN.

This module is read by settings (parse_group_map) before the app registry is ready, so it imports
models only inside the functions that use them.
"""

import json
import logging
import re
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured

from servicedesk.roles import RANK, STAFF_ROLES, Role

logger = logging.getLogger(__name__)

_DN_SPACES = re.compile(r"\s*([,=+])\s*")


def group_key(name: str) -> str:
    """How a group is compared: case-folded, with the spaces around a DN's separators dropped."""
    return _DN_SPACES.sub(r"\1", name.strip()).casefold()


def parse_group_map(raw: str, setting: str, *, roles: bool | None = None) -> dict[str, str]:
    """Read a JSON object group -> role (or group -> team name) from the environment variable `setting`.

    Values are checked to be role names when `roles` is true; when it is not given, when the setting's
    name ends in "_ROLES" (LDAP_GROUP_ROLES, OIDC_GROUP_ROLES). Empty or blank: no mapping ({}).
    Anything else that is not a JSON object of non-empty strings raises ImproperlyConfigured naming the
    setting, so a typo stops the start-up rather than silently signing everyone in as a requester.
    Keys are returned normalised (group_key); two spellings of one group mapping differently are refused.
    """
    if roles is None:
        roles = setting.upper().endswith("_ROLES")
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting} is not valid JSON ({exc}): expected an object such as "
                                   f'{{"cn=agents,ou=groups,dc=example,dc=org": "agent"}}') from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured(f"{setting} must be a JSON object of group -> "
                                   f"{'role' if roles else 'team name'}, not a {type(data).__name__}")
    result: dict[str, str] = {}
    for group, value in data.items():
        if not group.strip():
            raise ImproperlyConfigured(f"{setting}: a group name is empty")
        if not isinstance(value, str) or not value.strip():
            raise ImproperlyConfigured(f"{setting}: the value for group {group!r} must be a non-empty string, "
                                       f"not {value!r}")
        value = value.strip()
        if roles and value not in Role.values:
            raise ImproperlyConfigured(f"{setting}: {value!r} (for group {group!r}) is not a role; use one of "
                                       f"{', '.join(Role.values)}")
        key = group_key(group)
        if result.get(key, value) != value:
            raise ImproperlyConfigured(f"{setting}: group {group!r} is mapped twice (names are compared "
                                       f"ignoring case), to {result[key]!r} and to {value!r}")
        result[key] = value
    return result


def role_for(groups: Iterable[str], role_map: dict[str, str]) -> Role:
    """The highest role any of these groups maps to; requester when none does."""
    keyed = {group_key(k): v for k, v in role_map.items()}
    mapped = {keyed[key] for key in map(group_key, groups) if key in keyed}
    return next((role for role in RANK if role.value in mapped), Role.REQUESTER)


def group_keys(groups: Iterable[str], names: Iterable[str] = ()) -> set[str]:
    """The keys a person's groups match in a map: every group DN (or claim value) in `groups`, and the plain
    group names in `names` (LDAP's cn) that hold no "=". A map key with "=" names a DN and so matches only a
    DN: a group someone created elsewhere in the directory whose cn is the string
    "cn=sd-admins,ou=groups,dc=example,dc=org" must not count as that admin group."""
    keys = {group_key(g) for g in groups if g and g.strip()}
    return keys | {group_key(n) for n in names if n and n.strip() and "=" not in n}


def directory_sync(user, groups: Iterable[str], *, role_map: dict[str, str], team_map: dict[str, str],
                   source: str, names: Iterable[str] = ()) -> None:
    """Make the user's role and directory-managed teams match their directory groups, in one transaction.

    `groups` are group DNs (LDAP) or a provider's group claim values (OIDC), matched against every map key;
    `names` are plain group names (LDAP's cn), matched only against keys without "=" (group_keys).

    - role: the highest role any group maps to (requester when none does). A superuser is never demoted
      (their role groups are left alone). An empty role_map means the directory does not manage roles:
      roles stay what admins set here.
    - teams: only teams NAMED in team_map are managed; memberships of those are added and removed to
      match the groups, every other team is left alone. Teams hold agents only, so a person whose role
      is requester is taken out of the managed teams. A team named in the map that does not exist is a
      warning in the log, not an error.
    - an audit entry (action "user.directory_sync", with `source`) when the role or the teams changed.

    A constant number of queries, whatever the number of groups.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from servicedesk.models import Team, TeamMembership
    from servicedesk.roles import ensure_roles
    from servicedesk.services import audit_record

    keys = group_keys(groups, names)
    role_keyed = {group_key(k): v for k, v in role_map.items()}
    team_keyed = {group_key(k): v for k, v in team_map.items()}

    with transaction.atomic():
        # Two sign-ins of one person at once would otherwise both add the same memberships.
        locked = get_user_model().objects.select_for_update().only("id", "is_staff", "is_superuser").get(id=user.id)
        changes: dict = {}
        role_names = set(Role.values)
        current_groups = list(Group.objects.filter(user=locked, name__in=role_names))
        current = next((r for r in RANK if r.value in {g.name for g in current_groups}), Role.REQUESTER)
        if locked.is_superuser:
            role = Role.ADMIN
        elif role_keyed:
            role = role_for(keys, role_keyed)
            held = {g.name for g in current_groups}
            if held != {role.value}:
                by_name = {g.name: g for g in Group.objects.filter(name__in=role_names)}
                if role.value not in by_name:
                    by_name = ensure_roles()
                locked.groups.remove(*[g for g in current_groups if g.name != role.value])
                if role.value not in held:
                    locked.groups.add(by_name[role.value])
            is_staff = role in (Role.ADMIN, Role.MANAGER)  # Django admin: as user_provision sets it
            if locked.is_staff != is_staff:
                locked.is_staff = user.is_staff = is_staff
                locked.save(update_fields=["is_staff"])
            if role != current:
                changes["role"] = {"old": current.value, "new": role.value}
        else:
            role = current

        managed_names = set(team_keyed.values())
        if managed_names:
            teams = {t.name: t for t in Team.objects.filter(name__in=managed_names).only("id", "name")}
            for missing in sorted(managed_names - teams.keys()):
                logger.warning("directory (%s): team %r named in the group-to-team map does not exist; "
                               "create it or correct the map", source, missing)
            wanted_names = {team_keyed[k] for k in keys if k in team_keyed} if role in STAFF_ROLES else set()
            wanted = {teams[n].id for n in wanted_names if n in teams}
            have = set(TeamMembership.objects.filter(user=locked, team_id__in=[t.id for t in teams.values()])
                       .values_list("team_id", flat=True))
            names = {t.id: t.name for t in teams.values()}
            if wanted - have:
                TeamMembership.objects.bulk_create(
                    [TeamMembership(team_id=team_id, user=locked) for team_id in sorted(wanted - have)],
                    ignore_conflicts=True,
                )
            if have - wanted:
                TeamMembership.objects.filter(user=locked, team_id__in=have - wanted).delete()
            if wanted != have:
                changes["teams"] = {"added": sorted(names[i] for i in wanted - have),
                                    "removed": sorted(names[i] for i in have - wanted)}

        if hasattr(user, "_sd_role"):
            del user._sd_role
        if changes:
            audit_record(actor=None, action="user.directory_sync", obj=user,
                         changes={"source": source, **changes})
            logger.info("directory (%s): %s synced: %s", source, user.get_username(), changes)
