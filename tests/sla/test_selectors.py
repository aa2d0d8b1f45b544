"""policy_for: the first active matching policy by order, where an empty field matches anything."""

import pytest

from servicedesk.models import Organisation, Service
from sla.selectors import policy_for

pytestmark = pytest.mark.django_db

TYPE = "change"  # a ticket type no default policy uses


@pytest.fixture
def vpn():
    return Service.objects.create(name="VPN")


@pytest.fixture
def acme():
    return Organisation.objects.create(name="Acme")


def test_it_picks_the_first_match_by_order_not_by_creation(make_policy):
    make_policy("Later", order=20, ticket_type=TYPE)
    first = make_policy("First", order=10, ticket_type=TYPE)
    assert policy_for(TYPE, 3, None, None) == first


def test_empty_fields_match_anything_and_set_fields_must_match(make_policy, vpn, acme):
    vip = make_policy("Acme VPN P1", order=1, ticket_type=TYPE, priority=1, service=vpn, organisation=acme)
    acme_any = make_policy("Acme", order=2, ticket_type=TYPE, organisation=acme)
    fallback = make_policy("Everything", order=3, ticket_type=TYPE)

    assert policy_for(TYPE, 1, vpn.id, acme.id) == vip
    assert policy_for(TYPE, 2, vpn.id, acme.id) == acme_any          # priority differs
    assert policy_for(TYPE, 1, None, acme.id) == acme_any            # no service: a service policy cannot match
    assert policy_for(TYPE, 1, vpn.id, None) == fallback             # no organisation
    assert policy_for("other", 1, vpn.id, acme.id) is None           # ticket type always counts


def test_it_skips_inactive_policies_and_those_without_a_target_for_the_priority(make_policy):
    make_policy("Off", order=1, ticket_type=TYPE, active=False)
    make_policy("Urgent only", order=2, ticket_type=TYPE, targets=(1, 2))
    rest = make_policy("Rest", order=3, ticket_type=TYPE, targets=(3, 4, 5))
    assert policy_for(TYPE, 4, None, None) == rest
    assert policy_for(TYPE, 1, None, None).name == "Urgent only"


def test_it_is_one_query(make_policy, django_assert_num_queries):
    make_policy("Any", ticket_type=TYPE)
    with django_assert_num_queries(1):
        policy = policy_for(TYPE, 2, None, None)
        assert policy.calendar.name == "London office"


def test_a_policy_the_ticket_names_wins_while_it_can_apply(make_policy, vpn):
    rules = make_policy("By the rules", order=1, ticket_type=TYPE)
    own = make_policy("The item's own", order=99, ticket_type=TYPE, service=vpn, targets=(3, 4))
    assert policy_for(TYPE, 4, None, None) == rules
    assert policy_for(TYPE, 4, None, None, own.id) == own        # named: its own matching fields do not matter
    assert policy_for(TYPE, 1, None, None, own.id) == rules      # no target for P1: the rules decide
    assert policy_for("other", 4, None, None, own.id) is None     # never another ticket type's policy
    own.active = False
    own.save()
    assert policy_for(TYPE, 4, None, None, own.id) == rules      # inactive: the rules decide
