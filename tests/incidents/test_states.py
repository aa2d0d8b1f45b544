import itertools

import pytest

from incidents.states import ALLOWED, Status, check_transition
from servicedesk.errors import TransitionNotAllowed

LEGAL = {
    ("new", "in_progress"), ("new", "resolved"), ("new", "cancelled"),
    ("in_progress", "on_hold"), ("in_progress", "resolved"), ("in_progress", "cancelled"),
    ("on_hold", "in_progress"),
    ("resolved", "closed"), ("resolved", "in_progress"),
}


@pytest.mark.parametrize("current,to", sorted(itertools.product(Status.values, Status.values)))
def test_the_table_allows_exactly_the_documented_transitions(current, to):
    if (current, to) in LEGAL:
        check_transition(current, to)
    else:
        with pytest.raises(TransitionNotAllowed):
            check_transition(current, to)


def test_closed_and_cancelled_are_final():
    assert ALLOWED[Status.CLOSED] == set() and ALLOWED[Status.CANCELLED] == set()


def test_the_refusal_says_what_is_allowed():
    with pytest.raises(TransitionNotAllowed) as refused:
        check_transition("on_hold", "resolved")
    assert refused.value.message == "an incident that is on hold cannot become resolved (allowed: in_progress)"
    with pytest.raises(TransitionNotAllowed, match=r"allowed: none: it is final"):
        check_transition("closed", "in_progress")
