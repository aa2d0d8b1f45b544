"""monitoring.selectors: agents see alerts and requesters none; the console's states and filters; the sidebar
counts in one query; the incident's firing alerts and the interlock's sentence."""

import pytest
from django.http import QueryDict

from monitoring.models import Alert, MonitoringSettings
from monitoring.selectors import (
    ConsoleParams,
    ConsoleParamsError,
    alerts_for,
    alerts_objection,
    console_alerts,
    console_counts,
    console_params,
    firing_alerts_of_incident,
)
from servicedesk.models import Service
from servicedesk.roles import is_staff_role

from .console_data import make_alert, make_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(agent, incident_factory):
    """Five alerts over two sources and two services, in every state the console knows."""
    prom, grafana = make_source("Prometheus"), make_source("Grafana", kind="grafana")
    shop, mail = Service.objects.create(name="Webshop"), Service.objects.create(name="Mail")
    from django.utils import timezone

    return {
        "db": make_alert(prom, "Database down", severity="critical", service=shop),
        "disk": make_alert(prom, "Disk 91% on mail1", severity="minor", service=mail,
                           acknowledged_at=timezone.now(), acknowledged_by=agent),
        "cpu": make_alert(grafana, "CPU high on web2", severity="warning", service=shop),
        "cleared": make_alert(prom, "Queue backlog", severity="major", status=Alert.Status.RESOLVED),
        "old": make_alert(prom, "Ancient outage", severity="critical", status=Alert.Status.RESOLVED, live=False),
        "sources": (prom, grafana), "services": (shop, mail),
    }


def _ids(queryset):
    return [a.summary for a in queryset]


def test_requesters_and_strangers_see_no_alert_and_agents_see_all(alerts, requester, agent):
    from django.contrib.auth.models import AnonymousUser

    assert list(alerts_for(requester)) == []
    assert list(alerts_for(AnonymousUser())) == []
    assert list(alerts_for(None)) == []
    assert alerts_for(agent).count() == 5
    assert console_counts(requester) == {"firing": 0, "unacknowledged": 0}


def test_the_console_shows_firing_alerts_most_severe_first_by_default(alerts, agent):
    assert _ids(console_alerts(agent, console_params(QueryDict("")))) == [
        "Database down", "Disk 91% on mail1", "CPU high on web2"]


@pytest.mark.parametrize("state, expected", [
    ("unacknowledged", ["Database down", "CPU high on web2"]),
    ("acknowledged", ["Disk 91% on mail1"]),
    ("resolved", ["Queue backlog"]),
    ("live", ["Database down", "Queue backlog", "Disk 91% on mail1", "CPU high on web2"]),
])
def test_each_state_selects_its_live_alerts(alerts, agent, state, expected):
    assert _ids(console_alerts(agent, console_params(QueryDict(f"state={state}")))) == expected


def test_filters_narrow_by_severity_service_source_and_words(alerts, agent):
    shop, _ = alerts["services"]
    _, grafana = alerts["sources"]

    def rows(query):
        return _ids(console_alerts(agent, console_params(QueryDict(query))))

    assert rows("severity=critical&severity=warning") == ["Database down", "CPU high on web2"]
    assert rows("severity=minor,warning") == ["Disk 91% on mail1", "CPU high on web2"]
    assert rows(f"service={shop.id}") == ["Database down", "CPU high on web2"]
    assert rows(f"source={grafana.id}") == ["CPU high on web2"]
    assert rows("q=DISK") == ["Disk 91% on mail1"]
    assert rows(f"service={shop.id}&severity=critical&state=live") == ["Database down"]


def test_bad_filters_are_refused_naming_each_field():
    with pytest.raises(ConsoleParamsError) as error:
        console_params(QueryDict("state=burning&severity=fatal&service=Webshop&source=x"))
    assert set(error.value.errors) == {"state", "severity", "service", "source"}
    assert "firing" in error.value.errors["state"] and "critical" in error.value.errors["severity"]
    assert console_params(QueryDict("")) == ConsoleParams()


def test_the_sidebar_counts_come_from_one_query(alerts, agent, django_assert_num_queries):
    is_staff_role(agent)  # the role is known once per request (cached on the user)
    with django_assert_num_queries(1):
        counts = console_counts(agent)
    assert counts == {"firing": 3, "unacknowledged": 2}


def test_firing_alerts_of_an_incident_and_the_interlock_sentence(alerts, incident_factory,
                                                                 django_assert_max_num_queries):
    incident = incident_factory()
    prom, _ = alerts["sources"]
    for name in ("HTTP 5xx above 5%", "Pod restarts", "Queue depth", "Replica lag"):
        make_alert(prom, name, incident=incident)
    make_alert(prom, "Cleared one", incident=incident, status=Alert.Status.RESOLVED)
    assert firing_alerts_of_incident(incident.id).count() == 4

    with django_assert_max_num_queries(2):
        sentence = alerts_objection(incident)
    assert sentence.startswith("4 alerts of this incident still fire: ")
    assert sentence.endswith(" and 1 more.")
    assert "Cleared one" not in sentence

    settings = MonitoringSettings.current()
    settings.resolve_interlock = False
    settings.save()
    assert alerts_objection(incident) == ""


def test_no_objection_without_firing_alerts_in_one_query(incident_factory, django_assert_num_queries):
    incident = incident_factory()
    with django_assert_num_queries(1):
        assert alerts_objection(incident) == ""


def test_one_firing_alert_is_named_in_the_singular(incident_factory):
    incident = incident_factory()
    make_alert(make_source(), "Database down", incident=incident)
    assert alerts_objection(incident) == "1 alert of this incident still fires: Database down."
