"""The role is kept in the cache under the user's access version (servicedesk.roles.role_of,
servicedesk.twofactor.user_version): read from the database once, then from the cache on every request; any
change of groups, flags or a group's deletion counts on the very next request."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from servicedesk.roles import Role, role_of
from servicedesk.services import user_provision

pytestmark = pytest.mark.django_db


def fresh(user):
    """The user as the next request loads it (no role remembered on the object)."""
    return get_user_model().objects.get(pk=user.pk)


def test_read_once_then_from_the_cache(make_user, django_assert_num_queries):
    agent = make_user("agent")
    assert role_of(fresh(agent)) == Role.AGENT
    again = fresh(agent)
    with django_assert_num_queries(0):
        assert role_of(again) == Role.AGENT


def test_every_change_counts_on_the_next_request(make_user):
    person = make_user("agent")
    assert role_of(fresh(person)) == Role.AGENT
    user_provision(username=person.username, role="requester")  # a role taken away
    assert role_of(fresh(person)) == Role.REQUESTER
    fresh(person).groups.add(Group.objects.get(name="manager"))  # through the user
    assert role_of(fresh(person)) == Role.MANAGER
    Group.objects.get(name="manager").user_set.remove(person)  # through the group
    assert role_of(fresh(person)) == Role.REQUESTER
    Group.objects.get(name="agent").user_set.add(person)
    assert role_of(fresh(person)) == Role.AGENT
    Group.objects.get(name="agent").delete()  # the group itself: no m2m signal for its members
    assert role_of(fresh(person)) == Role.REQUESTER
    promoted = fresh(person)
    promoted.is_superuser = True
    promoted.save()
    assert role_of(fresh(person)) == Role.ADMIN


def test_a_role_group_renamed_gives_or_takes_the_role_at_once(make_user):
    manager = make_user("manager")
    assert role_of(fresh(manager)) == Role.MANAGER
    group = Group.objects.get(name="manager")
    group.name = "manager-old"
    group.save()  # the group no longer names a role: its members are requesters now
    assert role_of(fresh(manager)) == Role.REQUESTER
    group.name = "manager"
    group.save()
    assert role_of(fresh(manager)) == Role.MANAGER
