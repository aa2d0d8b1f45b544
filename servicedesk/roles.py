"""Roles as Django groups: requester, agent, manager (team lead), admin.

A user's role is the highest group they belong to; superusers are admins. Querysets check roles through
`role_of` (selectors), templates only mirror what the query already decided.
"""

from django.db import models


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    AGENT = "agent", "Agent"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


# Highest first: a user in several groups has the first role found here.
RANK = [Role.ADMIN, Role.MANAGER, Role.AGENT, Role.REQUESTER]
STAFF_ROLES = {Role.AGENT, Role.MANAGER, Role.ADMIN}

# Django model permissions per role: admin edits configuration in /admin/, managers their teams.
_CONFIG_MODELS = [
    "organisation",
    "team",
    "teammembership",
    "service",
    "configurationitem",
    "priorityrule",
    "webhook",
]
ROLE_PERMISSIONS = {
    Role.REQUESTER: [],
    Role.AGENT: ["servicedesk.view_service", "servicedesk.view_configurationitem", "servicedesk.view_team"],
    Role.MANAGER: [
        "servicedesk.view_service",
        "servicedesk.view_configurationitem",
        "servicedesk.view_team",
        "servicedesk.change_team",
        "servicedesk.add_teammembership",
        "servicedesk.delete_teammembership",
        "servicedesk.view_teammembership",
        "servicedesk.view_auditlog",
    ],
    Role.ADMIN: [f"servicedesk.{a}_{m}" for m in _CONFIG_MODELS for a in ("add", "change", "delete", "view")]
    + ["servicedesk.view_auditlog", "servicedesk.view_webhookdelivery"],
}


ROLE_CACHE_KEY = "sd-role:{}"
ROLE_CACHE_SECONDS = 3600


def role_of(user) -> Role | None:
    """The user's role, cached on the user object for the request, and across requests in the cache together with
    the user's access version (`servicedesk.twofactor.user_version`): any change of their groups, of their
    superuser or staff flags, or the deletion of a group they are in gives them a new version, and a role kept
    under an older one is read again at once. Saves a query on every request."""
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(user, "_sd_role", None)
    if cached is not None:
        return cached
    role = Role.ADMIN if user.is_superuser else _group_role(user)
    user._sd_role = role
    return role


def _group_role(user) -> Role:
    from django.core.cache import cache

    from servicedesk.twofactor import USER_VERSION_CACHE_KEY, user_version

    version_key, role_key = USER_VERSION_CACHE_KEY.format(user.pk), ROLE_CACHE_KEY.format(user.pk)
    found = cache.get_many([version_key, role_key])
    version, kept = found.get(version_key), found.get(role_key)
    if version is not None and kept is not None and kept[0] == version:
        return Role(kept[1])
    # The version first, then the groups: a change in between leaves the role under a version already gone.
    version = version or user_version(user.pk)
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in RANK if r.value in names), Role.REQUESTER)
    cache.set(role_key, (version, role.value), ROLE_CACHE_SECONDS)
    return role


def is_staff_role(user) -> bool:
    return role_of(user) in STAFF_ROLES


def ensure_roles() -> dict:
    """Create the role groups with their permissions; idempotent."""
    # Imported here so this module (Role, RANK) can be read by settings, before the app registry is ready.
    from django.contrib.auth.models import Group, Permission

    groups = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
        groups[role.value] = group
    return groups


def post_migrate_ensure_roles(sender, **kwargs):
    ensure_roles()


# --- the staff pick list ------------------------------------------------------------------------------------

STAFF_CHOICES_KEY = "staff-choices"
STAFF_CHOICES_SECONDS = 600  # a safety net: any change through the ORM drops the list at once (below)


def staff_choices() -> list[tuple[str, str]]:
    """(username, name) of every active agent, manager, admin and superuser, by name: the workspace's assignee
    pick lists. A desk's users are mostly requesters (every employee), and finding the staff among them reads
    every user (~3 ms of PostgreSQL at 5,000 users, ten times that at 50,000), so the list is kept in the
    cache, shared by every process, and dropped whenever a user is saved or deleted or group memberships
    change (`connect_staff_choices_signals`)."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from servicedesk.models import staff_role_users

    choices = cache.get(STAFF_CHOICES_KEY)
    if choices is None:
        rows = (get_user_model().objects.filter(staff_role_users(), is_active=True)
                .order_by("first_name", "last_name", "username")
                .values_list("username", "first_name", "last_name"))
        choices = [(username, f"{first} {last}".strip() or username) for username, first, last in rows]
        cache.set(STAFF_CHOICES_KEY, choices, timeout=STAFF_CHOICES_SECONDS)
    return choices


STAFF_OPTIONS_KEY = "staff-options"


def staff_options():
    """The `<option>`s of `staff_choices()`, none selected, drawn once for every page that lists them (two pick
    lists on every queue page: with hundreds of agents, drawing them cost several ms a page); kept and dropped
    with the list."""
    from django.core.cache import cache
    from django.utils.safestring import mark_safe

    from servicedesk.templatetags.rows import options

    drawn = cache.get(STAFF_OPTIONS_KEY)
    if drawn is None:
        drawn = str(options(staff_choices()))
        cache.set(STAFF_OPTIONS_KEY, drawn, timeout=STAFF_CHOICES_SECONDS)
    return mark_safe(drawn)


def forget_staff_choices(update_fields=None, **kwargs) -> None:
    from servicedesk.refcache import drop_now_and_at_commit

    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a sign-in changes nobody's name or role
    drop_now_and_at_commit([STAFF_CHOICES_KEY, STAFF_OPTIONS_KEY])


def connect_staff_choices_signals() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_delete, post_save

    User = get_user_model()
    post_save.connect(forget_staff_choices, sender=User, dispatch_uid="staff-choices-saved")
    post_delete.connect(forget_staff_choices, sender=User, dispatch_uid="staff-choices-deleted")
    m2m_changed.connect(forget_staff_choices, sender=User.groups.through, dispatch_uid="staff-choices-groups")
