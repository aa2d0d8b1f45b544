import pytest

from problems.states import ALLOWED, KNOWN, OPEN, Status, check_transition
from servicedesk.errors import TransitionNotAllowed


@pytest.mark.parametrize("current,to", [
    (Status.NEW, Status.INVESTIGATING), (Status.NEW, Status.KNOWN_ERROR), (Status.NEW, Status.RESOLVED),
    (Status.INVESTIGATING, Status.KNOWN_ERROR), (Status.INVESTIGATING, Status.RESOLVED),
    (Status.KNOWN_ERROR, Status.INVESTIGATING), (Status.KNOWN_ERROR, Status.RESOLVED),
    (Status.RESOLVED, Status.CLOSED), (Status.RESOLVED, Status.INVESTIGATING),
])
def test_the_lifecycle_allows_these_moves(current, to):
    check_transition(current, to)


@pytest.mark.parametrize("current,to", [
    (Status.NEW, Status.CLOSED), (Status.INVESTIGATING, Status.NEW), (Status.INVESTIGATING, Status.CLOSED),
    (Status.KNOWN_ERROR, Status.CLOSED), (Status.RESOLVED, Status.KNOWN_ERROR), (Status.CLOSED, Status.INVESTIGATING),
    (Status.CLOSED, Status.RESOLVED),
])
def test_every_other_move_is_refused_naming_what_is_allowed(current, to):
    with pytest.raises(TransitionNotAllowed) as caught:
        check_transition(current, to)
    assert caught.value.field == "status"
    assert "allowed" in caught.value.message


def test_closed_is_final_and_every_status_has_a_row():
    assert set(ALLOWED) == set(Status.values)
    assert ALLOWED[Status.CLOSED] == set()
    assert OPEN == {Status.NEW, Status.INVESTIGATING, Status.KNOWN_ERROR}
    assert Status.NEW not in KNOWN and Status.KNOWN_ERROR in KNOWN
