"""Monitoring in Django admin: event sources (token issued through monitoring.sources, shown once, rotatable),
rules, maintenance windows, the settings singleton, and the read-only events and alerts."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.admin import TOKEN_COOKIE
from monitoring.models import Alert, Event, EventSource, MaintenanceWindow, MonitoringSettings, Rule
from monitoring.sources import event_source_create, event_source_for_token, token_digest
from servicedesk.models import AuditLog, ConfigurationItem, Service, Team

pytestmark = pytest.mark.django_db

SOURCES = "/admin/monitoring/eventsource/"
RULES = "/admin/monitoring/rule/"
WINDOWS = "/admin/monitoring/maintenancewindow/"
EVENTS = "/admin/monitoring/event/"
ALERTS = "/admin/monitoring/alert/"
TOKEN_RE = re.compile(r"sdev_[A-Za-z0-9_-]{43}")


def source_form(**overrides):
    data = {"name": "Prometheus prod", "kind": "alertmanager", "enabled": "on", "service_label": "service",
            "ci_label": "instance", "severity_label": "severity", "rate_limit_per_minute": "60000"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def tokens_in(html: str) -> list[str]:
    return sorted(set(TOKEN_RE.findall(html)))


def make_alert(source, n=0, **kwargs):
    now = timezone.now()
    fields = {"fingerprint": f"fp{n}", "severity": "critical", "severity_rank": 1, "classification": "exception",
              "summary": f"Disk full on db-{n}", "labels": {"alertname": "DiskFull", "instance": f"db-{n}"},
              "first_seen": now, "last_seen": now}
    fields.update(kwargs)
    return Alert.objects.create(source=source, **fields)


def make_event(source, n=0, alert=None, **kwargs):
    now = timezone.now()
    fields = {"status": "firing", "severity": "critical", "summary": f"Disk full on db-{n}", "occurred_at": now,
              "fingerprint": f"fp{n}", "dedup_key": f"dk{n}", "labels": {"alertname": "DiskFull"},
              "raw": {"labels": {"alertname": "DiskFull", "instance": f"db-{n}"}, "status": "firing"},
              "outcome": "opened", "processed_at": now, "alert": alert}
    fields.update(kwargs)
    return Event.objects.create(source=source, **fields)


# --- event sources: token shown once ---------------------------------------------------------------------------

def test_it_creates_a_source_through_the_service_and_shows_its_token_once(admin_client, admin_user):
    response = admin_client.post(f"{SOURCES}add/", source_form())

    source = EventSource.objects.get(name="Prometheus prod")
    assert response.status_code == 302
    assert response["Location"] == f"{SOURCES}{source.id}/token/"
    assert "sdev_" not in response["Location"]
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    [token] = tokens_in(html)
    assert "no-store" in page["Cache-Control"]
    assert event_source_for_token(token) == source
    assert source.token_hash == token_digest(token) and source.token_hint == token[-4:]
    assert source.kind == "alertmanager" and source.enabled
    # The Alertmanager receiver to paste, with the token and this desk's endpoint.
    assert "http://testserver/api/v1/integrations/alertmanager/" in html
    assert f"credentials: {token}" in html and "type: Token" in html
    # Not stored in clear anywhere in the row, and the cookie that carried it is deleted by this page.
    assert token not in str(EventSource.objects.filter(id=source.id).values().get())
    assert page.cookies[TOKEN_COOKIE].value == ""
    assert AuditLog.objects.filter(action="event_source.created", object_id=str(source.id),
                                   actor=admin_user).count() == 1
    assert not AuditLog.objects.filter(action="eventsource.added").exists()  # one audit row, not two

    again = admin_client.get(f"{SOURCES}{source.id}/token/").content.decode()
    assert tokens_in(again) == []
    assert "is not shown again" in again
    change_page = admin_client.get(f"{SOURCES}{source.id}/change/").content.decode()
    assert tokens_in(change_page) == [] and f"…{token[-4:]}" in change_page


def test_the_token_page_of_another_source_does_not_show_the_token(admin_client):
    other, _ = event_source_create(name="Grafana", kind="grafana")
    admin_client.post(f"{SOURCES}add/", source_form())
    source = EventSource.objects.get(name="Prometheus prod")
    cookie = admin_client.cookies[TOKEN_COOKIE]
    assert cookie["path"] == f"{SOURCES}{source.id}/token/"  # the browser sends it to that page only

    # Even sent to another source's page by hand, the signature (salted per source) does not match.
    admin_client.cookies[TOKEN_COOKIE]["path"] = "/"
    assert tokens_in(admin_client.get(f"{SOURCES}{other.id}/token/").content.decode()) == []


def test_rotating_asks_first_then_issues_a_new_token_and_the_old_one_stops_working(admin_client, admin_user):
    source, old = event_source_create(name="Prometheus prod", kind="alertmanager")

    confirm = admin_client.get(f"{SOURCES}{source.id}/rotate/")
    assert confirm.status_code == 200 and "Yes, rotate the token" in confirm.content.decode()
    assert event_source_for_token(old) == source  # asking rotates nothing

    response = admin_client.post(f"{SOURCES}{source.id}/rotate/")
    assert response.status_code == 302 and response["Location"] == f"{SOURCES}{source.id}/token/"
    html = admin_client.get(response["Location"]).content.decode()
    [new] = tokens_in(html)
    assert new != old
    assert "the previous one no longer works" in html
    assert event_source_for_token(old) is None
    assert event_source_for_token(new) == source
    assert AuditLog.objects.filter(action="event_source.token_rotated", object_id=str(source.id),
                                   actor=admin_user).count() == 1
    assert tokens_in(admin_client.get(f"{SOURCES}{source.id}/token/").content.decode()) == []


def test_a_token_rotated_again_since_is_not_shown_from_a_stale_cookie(admin_client):
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    admin_client.post(f"{SOURCES}{source.id}/rotate/")
    stale = admin_client.cookies[TOKEN_COOKIE].value
    admin_client.post(f"{SOURCES}{source.id}/rotate/")  # e.g. from another tab
    admin_client.cookies[TOKEN_COOKIE] = stale
    admin_client.cookies[TOKEN_COOKIE]["path"] = f"{SOURCES}{source.id}/token/"

    assert tokens_in(admin_client.get(f"{SOURCES}{source.id}/token/").content.decode()) == []


def test_the_change_page_offers_rotation_and_the_connection_help(admin_client):
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")

    html = admin_client.get(f"{SOURCES}{source.id}/change/").content.decode()

    assert f'href="{SOURCES}{source.id}/rotate/"' in html
    assert "http://testserver/api/v1/integrations/alertmanager/" in html
    assert "credentials: &lt;token&gt;" in html


def test_the_add_page_lists_the_three_endpoints(admin_client):
    html = admin_client.get(f"{SOURCES}add/").content.decode()

    for url in ("/api/v1/events/", "/api/v1/integrations/alertmanager/", "/api/v1/integrations/grafana/"):
        assert f"http://testserver{url}" in html


def test_rotating_needs_a_post_and_change_permission(client, make_user):
    source, old = event_source_create(name="Prometheus prod", kind="generic")
    client.force_login(make_user("manager", teams=["Network"]))  # staff, but no monitoring permissions

    assert client.post(f"{SOURCES}{source.id}/rotate/").status_code == 403
    assert client.get(f"{SOURCES}{source.id}/token/").status_code == 403
    assert event_source_for_token(old) == source


def test_a_duplicate_name_is_refused_naming_the_field_and_nothing_is_created(admin_client):
    event_source_create(name="Prometheus prod", kind="generic")

    response = admin_client.post(f"{SOURCES}add/", source_form())

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert EventSource.objects.count() == 1
    assert TOKEN_COOKIE not in response.cookies


def test_editing_a_source_keeps_its_token(admin_client):
    source, token = event_source_create(name="Prometheus prod", kind="alertmanager")

    response = admin_client.post(f"{SOURCES}{source.id}/change/",
                                 source_form(name="Prometheus eu", enabled=None, rate_limit_per_minute="10"))

    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.enabled, source.rate_limit_per_minute) == ("Prometheus eu", False, 10)
    assert source.token_hash == token_digest(token)
    assert event_source_for_token(token) is None  # disabled: refused
    change = AuditLog.objects.get(action="eventsource.changed")
    assert change.changes["after"] == {"name": "Prometheus eu", "enabled": False, "rate_limit_per_minute": 10}


def test_a_source_that_received_events_is_not_deleted(admin_client):
    used, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    make_event(used)
    unused, _ = event_source_create(name="Spare", kind="generic")

    page = admin_client.get(f"{SOURCES}{used.id}/delete/").content.decode()
    admin_client.post(f"{SOURCES}{used.id}/delete/", {"post": "yes"})
    admin_client.post(f"{SOURCES}{unused.id}/delete/", {"post": "yes"})

    assert "has received events: disable it instead" in page
    assert EventSource.objects.filter(id=used.id).exists() and Event.objects.count() == 1
    assert not EventSource.objects.filter(id=unused.id).exists()
    deleted = AuditLog.objects.get(action="eventsource.deleted")
    assert "token_hash" not in deleted.changes["before"]


# --- rules -----------------------------------------------------------------------------------------------------

def rule_form(**overrides):
    data = {"name": "Prod databases", "order": "10", "enabled": "on", "match_severities": ["critical", "major"],
            "match_labels": '{"env": "prod"}', "match_text": "", "classification": "exception", "priority": "2",
            "on_recovery": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_rule_is_saved_with_its_matchers(admin_client):
    team = Team.objects.create(name="DBA")

    response = admin_client.post(f"{RULES}add/", rule_form(team=str(team.id),
                                                           match_severities=["major", "critical"]))

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = Rule.objects.get()
    assert rule.match_severities == ["critical", "major"]  # most severe first
    assert rule.match_labels == {"env": "prod"} and rule.priority == 2 and rule.team == team
    listing = admin_client.get(RULES).content.decode()
    assert "severity critical or major; env=prod" in listing


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"match_severities": ["critical", "catastrophic"]}, "match_severities", "catastrophic"),
    ({"match_labels": '["env", "prod"]'}, "match_labels", "object of label names and values"),
    ({"match_labels": '{"env": 1}'}, "match_labels", "must be a string"),
    ({"match_labels": "{env: prod}"}, "match_labels", "JSON"),
    ({"priority": "6"}, "priority", "1 (critical) to 5"),
    ({"priority": "0"}, "priority", "1 (critical) to 5"),
])
def test_a_bad_rule_is_refused_naming_the_field(admin_client, overrides, field, message):
    response = admin_client.post(f"{RULES}add/", rule_form(**overrides))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not Rule.objects.exists()


def test_rules_are_reordered_and_switched_off_from_the_list(admin_client):
    first = Rule.objects.create(name="A", order=10)
    second = Rule.objects.create(name="B", order=20)

    page = admin_client.get(RULES).content.decode()
    assert 'name="form-0-order"' in page and 'name="form-0-enabled"' in page
    response = admin_client.post(RULES, {
        "form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(first.id), "form-0-order": "30", "form-0-enabled": "on",
        "form-1-id": str(second.id), "form-1-order": "5", "_save": "Save"})

    assert response.status_code == 302
    assert [(r.name, r.order, r.enabled) for r in Rule.objects.all()] == [("B", 5, False), ("A", 30, True)]


def test_the_rule_form_cannot_add_a_source_in_a_popup(admin_client):
    html = admin_client.get(f"{RULES}add/").content.decode()
    assert "add_id_match_source" not in html  # a popup would issue a token nobody sees


# --- maintenance windows ---------------------------------------------------------------------------------------

def window_form(**overrides):
    data = {"name": "DB upgrade", "starts_at_0": "2026-12-01", "starts_at_1": "22:00:00",
            "ends_at_0": "2026-12-02", "ends_at_1": "02:00:00", "reason": "PostgreSQL 17"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_window_is_saved_with_who_created_it(admin_client, admin_user):
    service = Service.objects.create(name="Checkout")

    response = admin_client.post(f"{WINDOWS}add/", window_form(service=str(service.id)))

    assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.created_by == admin_user and window.service == service
    assert window.ends_at - window.starts_at == timedelta(hours=4)


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"ends_at_0": "2026-12-01", "ends_at_1": "21:00:00"}, "ends_at", "end must be after the start"),
    ({"ends_at_0": "2026-12-01", "ends_at_1": "22:00:00"}, "ends_at", "end must be after the start"),
    ({"service": None}, "service", "Choose the service or the configuration item"),
])
def test_a_bad_window_is_refused_naming_the_field(admin_client, overrides, field, message):
    service = Service.objects.create(name="Checkout")
    data = window_form(service=str(service.id))
    data.update(overrides)

    response = admin_client.post(f"{WINDOWS}add/", {k: v for k, v in data.items() if v is not None})

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.errors) == [field]
    assert message in " ".join(form.errors[field])
    assert not MaintenanceWindow.objects.exists()


def test_the_window_list_says_which_are_active_now(admin_client):
    ci = ConfigurationItem.objects.create(name="db-1")
    now = timezone.now()
    MaintenanceWindow.objects.create(name="Now", configuration_item=ci, starts_at=now - timedelta(hours=1),
                                     ends_at=now + timedelta(hours=1))
    MaintenanceWindow.objects.create(name="Later", configuration_item=ci, starts_at=now + timedelta(days=1),
                                     ends_at=now + timedelta(days=1, hours=1))

    response = admin_client.get(WINDOWS, {"when": "now"})

    rows = list(response.context["cl"].result_list)
    assert [w.name for w in rows] == ["Now"]
    assert 'alt="True"' in response.content.decode()


# --- settings --------------------------------------------------------------------------------------------------

def test_settings_is_one_page_never_added_or_deleted(admin_client):
    response = admin_client.get("/admin/monitoring/monitoringsettings/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/monitoring/monitoringsettings/1/change/"
    assert admin_client.get("/admin/monitoring/monitoringsettings/add/").status_code == 403
    assert admin_client.post("/admin/monitoring/monitoringsettings/1/delete/", {"post": "yes"}).status_code == 403
    assert MonitoringSettings.objects.count() == 1

    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    data = {"correlation_window_minutes": "15", "reopen_window_minutes": "60", "flap_changes": "4",
            "flap_minutes": "10", "on_recovery": "note", "recovery_spares_human_work": "on"}
    saved = admin_client.post("/admin/monitoring/monitoringsettings/1/change/", data)
    assert saved.status_code == 302 and saved["Location"] == "/admin/monitoring/monitoringsettings/1/change/"
    current = MonitoringSettings.current()
    assert (current.correlation_window_minutes, current.on_recovery, current.resolve_interlock) == (15, "note", False)

    refused = admin_client.post("/admin/monitoring/monitoringsettings/1/change/", {**data, "flap_changes": "1"})
    assert list(refused.context["adminform"].form.errors) == ["flap_changes"]
    assert MonitoringSettings.current().flap_changes == 4


# --- events and alerts: read-only ------------------------------------------------------------------------------

def test_events_and_alerts_cannot_be_added_changed_or_deleted(admin_client, incident_factory):
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    alert = make_alert(source, incident=incident_factory())
    event = make_event(source, alert=alert)

    for url, obj in ((EVENTS, event), (ALERTS, alert)):
        assert admin_client.get(f"{url}add/").status_code == 403
        assert admin_client.post(f"{url}add/", {"summary": "x"}).status_code == 403
        assert admin_client.post(f"{url}{obj.id}/change/", {"summary": "changed"}).status_code == 403
        assert admin_client.post(f"{url}{obj.id}/delete/", {"post": "yes"}).status_code == 403
        view = admin_client.get(f"{url}{obj.id}/change/")
        assert view.status_code == 200
        assert 'name="_save"' not in view.content.decode()  # a view page: no save button
    assert Event.objects.get().summary == "Disk full on db-0"
    assert Alert.objects.get().summary == "Disk full on db-0"


def test_the_raw_payload_is_shown_as_pretty_json(admin_client):
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    alert = make_alert(source)
    event = make_event(source, alert=alert, raw={"labels": {"alertname": "Disk<Full>", "instance": "db-0"},
                                                 "status": "firing"})

    html = admin_client.get(f"{EVENTS}{event.id}/change/").content.decode()
    pretty = ('<pre class="monitoring-json">{\n  &quot;labels&quot;: {\n    &quot;alertname&quot;: '
              '&quot;Disk&lt;Full&gt;&quot;,\n    &quot;instance&quot;: &quot;db-0&quot;\n  },\n'
              '  &quot;status&quot;: &quot;firing&quot;\n}</pre>')
    assert pretty in html
    alert_html = admin_client.get(f"{ALERTS}{alert.id}/change/").content.decode()
    assert "&quot;alertname&quot;: &quot;Disk&lt;Full&gt;&quot;" in alert_html  # its latest payload
    assert f"{EVENTS}?alert__id__exact={alert.id}" in alert_html


@pytest.mark.parametrize(("params", "expected"), [
    ({"outcome": "opened"}, ["a"]),
    ({"status": "resolved"}, ["b"]),
    ({"severity": "warning"}, ["b"]),
    ({"q": "printer"}, ["b"]),
])
def test_events_filter_by_source_status_severity_outcome_and_search(admin_client, params, expected):
    source, _ = event_source_create(name="Prometheus prod", kind="alertmanager")
    other, _ = event_source_create(name="Grafana", kind="grafana")
    make_event(source, 1, summary="a", outcome="opened")
    make_event(other, 2, summary="b", status="resolved", severity="warning", outcome="no_alert",
               service_name="printer")

    rows = admin_client.get(EVENTS, params).context["cl"].result_list
    assert [e.summary for e in rows] == expected
    by_source = admin_client.get(EVENTS, {"source__id__exact": str(other.id)}).context["cl"].result_list
    assert [e.summary for e in by_source] == ["b"]


# --- every page renders; lists in a constant number of queries --------------------------------------------------

def populate(n, incident_factory):
    sources = [event_source_create(name=f"Source {i}", kind="alertmanager",
                                   default_service=Service.objects.create(name=f"Service {i}"),
                                   default_configuration_item=ConfigurationItem.objects.create(name=f"ci-{i}"))[0]
               for i in range(n)]
    team = Team.objects.get_or_create(name="Ops")[0]
    incident = incident_factory()
    for i, source in enumerate(sources):
        Rule.objects.create(name=f"Rule {i}", order=i, match_source=source, team=team,
                            match_severities=["critical"], match_labels={"env": "prod"})
        MaintenanceWindow.objects.create(name=f"Window {i}", service=source.default_service,
                                         configuration_item=source.default_configuration_item,
                                         starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1))
        alert = make_alert(source, i, service=source.default_service, incident=incident,
                           configuration_item=source.default_configuration_item)
        make_event(source, i, alert=alert)


LISTS = [SOURCES, RULES, WINDOWS, EVENTS, ALERTS]


def test_every_monitoring_admin_page_renders(admin_client, incident_factory):
    populate(2, incident_factory)
    pages = [*LISTS, f"{SOURCES}add/", f"{RULES}add/", f"{WINDOWS}add/",
             "/admin/monitoring/monitoringsettings/1/change/", "/admin/monitoring/"]
    for model, url in ((EventSource, SOURCES), (Rule, RULES), (MaintenanceWindow, WINDOWS), (Event, EVENTS),
                       (Alert, ALERTS)):
        pages.append(f"{url}{model.objects.first().id}/change/")
    pages.append(f"{SOURCES}{EventSource.objects.first().id}/rotate/")
    pages.append(f"{SOURCES}{EventSource.objects.first().id}/token/")

    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    index = admin_client.get("/admin/").content.decode()
    for name in ("Event sources", "Rules", "Maintenance windows", "Monitoring settings", "Events", "Alerts"):
        assert name in index


@pytest.mark.parametrize("url", LISTS)
def test_lists_run_a_constant_number_of_queries(admin_client, incident_factory, django_assert_max_num_queries,
                                                url):
    populate(2, incident_factory)
    admin_client.get(url)  # warm the session, content types and permission caches
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200

    populate_more = 20
    for i in range(populate_more):
        source = EventSource.objects.first()
        make_alert(source, 100 + i, live=False)
        make_event(source, 100 + i)
        Rule.objects.create(name=f"More {i}", match_source=source)
        MaintenanceWindow.objects.create(name=f"More {i}", service=source.default_service,
                                         starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1))
        event_source_create(name=f"More {i}", kind="generic", default_service=source.default_service)
    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(url)
    assert len(response.context["cl"].result_list) >= 20
