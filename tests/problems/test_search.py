import pytest

from problems import services
from problems.search import known_errors_search

pytestmark = pytest.mark.django_db


def known(agent, title, *, root_cause="", workaround="", description=""):
    problem = services.problem_create(title=title, description=description, created_by=agent)
    services.problem_update(problem_id=problem.id, actor=agent, root_cause=root_cause, workaround=workaround)
    return services.problem_known_error(problem_id=problem.id, actor=agent)


def test_a_word_in_the_title_outranks_it_in_the_workaround_which_outranks_it_in_the_description(agent):
    in_description = known(agent, "Slow logins", workaround="Wait", description="Seen after the printer update")
    in_workaround = known(agent, "Jobs stuck in queue", workaround="Restart the printer spooler")
    in_title = known(agent, "Printer drops jobs", root_cause="Driver bug")
    assert list(known_errors_search(agent, "printer")) == [in_title, in_workaround, in_description]


def test_every_word_must_match_and_words_are_stemmed(agent):
    vpn = known(agent, "VPN disconnects hourly", root_cause="Certificate expiring")
    known(agent, "Mail disconnects", root_cause="Proxy")
    assert list(known_errors_search(agent, "vpn disconnecting")) == [vpn]
    assert list(known_errors_search(agent, "certificates")) == [vpn]


def test_only_known_errors_are_found_and_the_index_follows_edits(agent):
    draft = services.problem_create(title="Printer offline", created_by=agent)
    assert list(known_errors_search(agent, "printer")) == []
    services.problem_update(problem_id=draft.id, actor=agent, workaround="Power cycle the printer")
    services.problem_known_error(problem_id=draft.id, actor=agent)
    assert list(known_errors_search(agent, "power cycle")) == [draft]


def test_requesters_find_nothing(agent, requester):
    known(agent, "Printer drops jobs", root_cause="Driver bug")
    assert list(known_errors_search(requester, "printer")) == []
    assert list(known_errors_search(requester, "")) == []
