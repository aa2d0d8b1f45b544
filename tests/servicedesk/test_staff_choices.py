"""The staff pick list (servicedesk.roles.staff_choices): kept in the cache, dropped by any change through the
ORM to a user or to group memberships."""

import pytest
from django.contrib.auth.models import update_last_login

from servicedesk.roles import staff_choices, staff_options
from servicedesk.services import user_provision

pytestmark = pytest.mark.django_db


def test_the_list_is_read_once_then_from_the_cache(make_user, django_assert_num_queries):
    agent = make_user("agent", username="agnes", first_name="Agnes", last_name="Agent")
    make_user("requester", username="alice")
    with django_assert_num_queries(1):
        assert staff_choices() == [("agnes", "Agnes Agent")]
    with django_assert_num_queries(0):
        assert staff_choices() == [("agnes", "Agnes Agent")]
    update_last_login(None, agent)  # a sign-in changes nobody's name or role: the list is kept
    with django_assert_num_queries(0):
        staff_choices()


def test_every_change_shows_at_once(make_user, django_user_model):
    agent = make_user("agent", username="agnes", first_name="Agnes", last_name="Agent")
    assert staff_choices() == [("agnes", "Agnes Agent")]
    make_user("manager", username="mo")  # a new staff account (groups added after the save)
    assert staff_choices() == [("mo", "mo"), ("agnes", "Agnes Agent")]  # by first name: none comes first
    agent.first_name = "Agnieszka"
    agent.save()
    assert ("agnes", "Agnieszka Agent") in staff_choices()
    user_provision(username="mo", role="requester")  # a role taken away: memberships change
    assert staff_choices() == [("agnes", "Agnieszka Agent")]
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    assert ("root", "root") in staff_choices()
    agent.is_active = False
    agent.save()
    assert staff_choices() == [("root", "root")]
    root.delete()
    assert staff_choices() == []


def test_the_drawn_options_are_kept_and_dropped_with_the_list(make_user, django_assert_num_queries):
    agent = make_user("agent", username="agnes", first_name="Agnes", last_name="Agent")
    assert staff_options() == '<option value="agnes">Agnes Agent</option>'
    with django_assert_num_queries(0):
        staff_options()
    agent.first_name = "Agnieszka <b>"
    agent.save()
    assert staff_options() == '<option value="agnes">Agnieszka &lt;b&gt; Agent</option>'
