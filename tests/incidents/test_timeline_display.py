"""People read names: the timeline spells assignees by name, the details panel wraps a long email sensibly."""

import re

import pytest

from incidents import services
from servicedesk.models import Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def nina(make_user):
    Team.objects.get_or_create(name="Network")
    return make_user("agent", username="nina", first_name="Nina", last_name="Netwright", teams=["Network"])


def test_the_timeline_shows_assignees_by_name_not_username(client, agent, nina, incident_factory, make_user):
    incident = incident_factory(title="VPN is very slow")
    services.incident_assign(incident_id=incident.id, actor=agent, assignment_group=Team.objects.get(name="Network"),
                             assignee=nina)
    services.incident_assign(incident_id=incident.id, actor=agent,
                             assignment_group=Team.objects.get(name="Service Desk"), assignee=agent)
    gone = make_user("agent", username="ghost", first_name="", last_name="", teams=["Service Desk"])
    services.incident_assign(incident_id=incident.id, actor=agent, assignee=gone)
    client.force_login(agent)

    page = client.get(f"/agent/incidents/{incident.number}/").content.decode()

    changes = re.findall(r'<span class="change">(.*?)</span></span>', page, re.S)
    text = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in changes]
    assert "Assignee — → Nina Netwright" in text
    assert "Assignee Nina Netwright → Agnes Agent" in text
    assert "Assignee Agnes Agent → ghost" in text  # no name on file: the username, as the last resort
    assert "<code" not in "".join(changes)


def test_the_names_cost_one_query_however_many_changes(agent, nina, incident_factory, django_assert_num_queries):
    from incidents.views.incident import timeline_for

    incident = incident_factory(title="VPN is very slow")
    for person in (nina, agent, nina, agent):
        group = Team.objects.get(name="Network" if person == nina else "Service Desk")
        services.incident_assign(incident_id=incident.id, actor=agent, assignment_group=group, assignee=person)
    with django_assert_num_queries(2):  # the entries, and every name they mention
        entries = timeline_for(incident, agent)
    last = {label: (old, new) for label, old, new in [e for e in entries if e.kind == "change"][-1].change_list}
    assert last["Assignee"] == ("Nina Netwright", "Agnes Agent")


def test_the_details_panel_lets_a_long_email_wrap_after_the_at_and_before_dots(client, agent, incident_factory,
                                                                               make_user):
    long_email = "maximiliana.von-hohenzollern@procurement-department.example-corporation.com"
    someone = make_user("requester", username="maxi", email=long_email, first_name="Maximiliana")
    incident = incident_factory(requester=someone, title="VPN is very slow")
    client.force_login(agent)

    page = client.get(f"/agent/incidents/{incident.number}/").content.decode()

    assert ('<small class="email" data-testid="requester-email">maximiliana<wbr>.von-hohenzollern@<wbr>'
            "procurement-department<wbr>.example-corporation<wbr>.com</small>") in page


def test_the_email_wrap_filter_escapes_the_address():
    from servicedesk.templatetags.people import email_wrap

    assert email_wrap('"<b>"@x.org') == "&quot;&lt;b&gt;&quot;@<wbr>x<wbr>.org"
    assert email_wrap("") == ""
