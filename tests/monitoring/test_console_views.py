"""The workspace pages under /agent/monitoring/: the console (filters, the polled fragment, constant queries),
acknowledge and link from a row (htmx gets the row back, without JavaScript a redirect), the alert page with
its escaped raw payloads, the KPI page, the sidebar section and the incident page's Alerts panel."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import Alert
from servicedesk.models import Service

from .console_data import make_alert, make_event, make_source

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def source(db):
    return make_source()


def test_requesters_get_403_on_every_monitoring_page(client, requester, source):
    alert = make_alert(source)
    client.force_login(requester)
    for url in ("/agent/monitoring/", "/agent/monitoring/table/", "/agent/monitoring/kpis/",
                f"/agent/monitoring/alerts/{alert.id}/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/agent/monitoring/alerts/{alert.id}/acknowledge/").status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_the_console_lists_firing_alerts_with_filters_and_a_polling_fragment(agent_client, source,
                                                                             incident_factory):
    incident = incident_factory()
    shop = Service.objects.create(name="Webshop")
    make_alert(source, "Checkout down", incident=incident, service=shop, flapping=True, count=7)
    make_alert(source, "CPU high", severity="warning")
    make_alert(source, "Recovered", status=Alert.Status.RESOLVED)
    page = agent_client.get("/agent/monitoring/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Checkout down" in html and "CPU high" in html and "Recovered" not in html
    assert f'href="/agent/incidents/{incident.number}/">{incident.number}</a>' in html
    assert 'data-testid="alert-flapping"' in html
    assert 'hx-get="/agent/monitoring/table/?state=firing"' in html and 'hx-trigger="every 7s"' in html
    assert '<span data-testid="console-count">2</span>' in html
    assert 'data-testid="nav-monitoring-console"' in html

    fragment = agent_client.get(f"/agent/monitoring/table/?state=live&service={shop.id}", **HTMX)
    text = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in text
    assert "Checkout down" in text and "CPU high" not in text
    assert f"state=live&amp;service={shop.id}" in text  # the next poll keeps the filters


def test_bad_filters_answer_400_naming_them(agent_client):
    response = agent_client.get("/agent/monitoring/?state=burning&source=x")
    assert response.status_code == 400
    html = response.content.decode()
    assert "<strong>state</strong>" in html and "<strong>source</strong>" in html


def test_the_console_page_costs_the_same_queries_for_2_and_40_alerts(agent_client, source, incident_factory,
                                                                     agent):
    incident = incident_factory()
    shop = Service.objects.create(name="Webshop")

    def fill(n):
        for i in range(n):
            make_alert(source, f"Alert {i}", incident=incident, service=shop, acknowledged_by=agent)

    fill(2)
    with CaptureQueriesContext(connection) as small:
        assert agent_client.get("/agent/monitoring/table/").status_code == 200
    fill(38)
    with CaptureQueriesContext(connection) as large:
        response = agent_client.get("/agent/monitoring/table/")
    assert response.content.decode().count('data-testid="alert-row"') == 40
    assert len(large.captured_queries) == len(small.captured_queries)


def test_acknowledge_with_htmx_answers_the_row(agent_client, source):
    alert = make_alert(source, "Checkout down")
    response = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/acknowledge/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and f'<tr id="alert-{alert.id}"' in html
    assert "Acknowledged by Agnes Agent" in html and 'data-testid="alert-acknowledge"' not in html
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "agnes"


def test_acknowledge_without_javascript_goes_back_to_next(agent_client, source):
    alert = make_alert(source)
    response = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/acknowledge/",
                                 {"next": "/agent/monitoring/?state=live"})
    assert response.status_code == 302 and response["Location"] == "/agent/monitoring/?state=live"
    outside = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/acknowledge/", {"next": "https://evil.example/"})
    assert outside["Location"] == f"/agent/monitoring/alerts/{alert.id}/"


def test_linking_from_a_row_names_a_bad_number_and_keeps_what_was_typed(agent_client, source, incident_factory):
    alert = make_alert(source)
    refused = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/link/", {"incident": "INC0999999"}, **HTMX)
    html = refused.content.decode()
    assert refused.status_code == 400
    assert "there is no incident INC0999999" in html and 'value="INC0999999"' in html
    incident = incident_factory()
    linked = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/link/", {"incident": incident.number}, **HTMX)
    assert linked.status_code == 200 and f">{incident.number}</a>" in linked.content.decode()
    alert.refresh_from_db()
    assert alert.incident_id == incident.id


def test_linking_without_javascript_says_so_on_the_next_page(agent_client, source, incident_factory):
    alert = make_alert(source)
    incident = incident_factory()
    response = agent_client.post(f"/agent/monitoring/alerts/{alert.id}/link/", {"incident": incident.number},
                                 follow=True)
    assert f"Alert linked to {incident.number}." in response.content.decode()


def test_the_alert_page_shows_its_latest_events_with_escaped_raw_payloads(agent_client, source):
    alert = make_alert(source, "Checkout down", labels={"env": "prod", "alertname": "CheckoutDown"})
    for i in range(55):
        make_event(source, alert=alert, raw={"n": i})
    make_event(source, alert=alert, raw={"annotations": {"summary": "<script>alert(1)</script>"}, "n": 99})
    response = agent_client.get(f"/agent/monitoring/alerts/{alert.id}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-testid="alert-event"') == 50
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert '&quot;n&quot;: 99' in html  # pretty JSON, newest first
    assert "alertname" in html and "CheckoutDown" in html
    assert agent_client.get("/agent/monitoring/alerts/999999/").status_code == 404


def test_the_kpi_page_draws_four_charts_with_their_numbers(agent_client, source):
    make_alert(source, "Checkout down")
    make_event(source)
    response = agent_client.get("/agent/monitoring/kpis/?period=1h")
    html = response.content.decode()
    assert response.status_code == 200
    for key in ("events", "open", "noise", "times"):
        assert f'data-testid="kpi-{key}-chart"' in html and f'data-testid="kpi-{key}-numbers"' in html
        assert f'aria-labelledby="kpi-{key}-caption"' in html
    assert 'id="kpi-chart-data"' in html and "vendor/chartjs/chart.umd.min.js" in html
    assert '<option value="1h" selected>' in html
    assert agent_client.get("/agent/monitoring/kpis/?period=1y").status_code == 400


def test_the_sidebar_counts_firing_and_unacknowledged_alerts(agent_client, source, agent):
    from django.utils import timezone

    make_alert(source)
    make_alert(source, acknowledged_at=timezone.now(), acknowledged_by=agent)
    html = agent_client.get("/agent/").content.decode()
    console = html.split('data-testid="nav-monitoring-console"')[1][:400]
    unacked = html.split('data-testid="nav-monitoring-unacknowledged"')[1][:400]
    assert '>2</span>' in console and 'hot' in unacked and '>1</span>' in unacked
    page = agent_client.get("/agent/monitoring/?state=unacknowledged").content.decode()
    assert 'data-testid="nav-monitoring-unacknowledged" aria-current="page"' in page
    assert 'data-testid="nav-monitoring-console" aria-current="page"' not in page


def test_the_incident_page_shows_its_alerts_panel_only_when_it_has_alerts(agent_client, source, incident_factory):
    quiet = incident_factory(title="Quiet one")
    assert 'data-testid="incident-alerts"' not in agent_client.get(f"/agent/incidents/{quiet.number}/").content.decode()
    incident = incident_factory()
    firing = make_alert(source, "Checkout down", incident=incident, count=4)
    make_alert(source, "Checkout latency", incident=incident, status=Alert.Status.RESOLVED)
    html = agent_client.get(f"/agent/incidents/{incident.number}/").content.decode()
    panel = html.split('data-testid="incident-alerts"')[1].split("</section>")[0]
    assert "2</span>" in panel and "1 firing" in panel
    assert panel.index("Checkout down") < panel.index("Checkout latency")
    assert f'href="/agent/monitoring/alerts/{firing.id}/"' in panel and "×4" in panel
