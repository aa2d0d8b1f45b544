"""The service insights dashboard (/agent/insights/) and its table exports: who may see what, field-named
errors, the page showing a Dashboard's figures (captions, tables, exports, chart data), constant queries."""

import json
import re
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from insights.views import hours_words, render_dashboard
from servicedesk.models import Team
from tests.insights.handmade import handmade_dashboard

pytestmark = pytest.mark.django_db
URL = "/agent/insights/"


@pytest.fixture
def teams(db):
    return {name: Team.objects.get_or_create(name=name)[0] for name in ("Network", "Service Desk", "Apps")}


@pytest.fixture
def manager(make_user, teams):
    user = make_user("manager", username="maria", first_name="Maria", last_name="Manager", teams=["Service Desk"])
    Team.objects.filter(name="Apps").update(lead=user)
    return user


def team_choices(html: str) -> list[str]:
    select = re.search(r'<select name="team".*?</select>', html, re.S).group(0)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select)


def render(user, dashboard, query=None):
    request = RequestFactory().get(URL, query or {})
    request.user = user
    response = render_dashboard(request, dashboard)
    return response.content.decode()


# --- permissions -------------------------------------------------------------------------------------------

def test_it_refuses_requesters_the_page_and_the_exports(client, requester):
    client.force_login(requester)
    assert client.get(URL).status_code == 403
    assert client.get(reverse("agent:insights_export", args=["backlog"])).status_code == 403


def test_it_sends_anonymous_visitors_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_offers_an_agent_only_their_own_teams(client, agent, teams):
    client.force_login(agent)
    response = client.get(URL, {"from": "nonsense"})  # a 400 page still shows the filters
    assert response.status_code == 400
    assert team_choices(response.content.decode()) == ["All my teams", "Service Desk"]


def test_it_answers_400_naming_team_when_an_agent_asks_for_another_team(client, agent, teams):
    client.force_login(agent)
    response = client.get(URL, {"team": teams["Network"].id})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-field="team"' in html and "No team" in html
    assert 'data-field="from"' not in html
    export = client.get(reverse("agent:insights_export", args=["backlog"]), {"team": teams["Network"].id})
    assert export.status_code == 400 and export.content.decode().startswith("team: ")


def test_it_offers_a_manager_the_teams_they_lead_and_belong_to(client, manager, teams):
    client.force_login(manager)
    response = client.get(URL, {"to": "2026-02-30"})
    assert response.status_code == 400
    assert team_choices(response.content.decode()) == ["All my teams", "Apps", "Service Desk"]


def test_it_offers_an_admin_every_team(client, admin_user, teams):
    client.force_login(admin_user)
    response = client.get(URL, {"from": "x"})
    assert team_choices(response.content.decode()) == ["All teams", "Apps", "Network", "Service Desk"]


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "31/01/2026"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"service": "abc"}, "service"),
])
def test_it_answers_400_naming_a_bad_field(client, admin_user, query, field):
    client.force_login(admin_user)
    response = client.get(URL, query)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-field="{field}"' in html
    assert f'id="ins-{field}"' in html and 'aria-invalid="true"' in html
    assert "insights-chart-data" not in html  # no figures for a scope that is not one


def test_it_answers_400_when_the_period_ends_before_it_starts(client, admin_user):
    client.force_login(admin_user)
    today = timezone.localdate()
    response = client.get(URL, {"from": today.isoformat(), "to": (today - timedelta(days=3)).isoformat()})
    assert response.status_code == 400
    assert 'data-field="to"' in response.content.decode()


def test_it_answers_404_for_an_unknown_table(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("agent:insights_export", args=["salaries"])).status_code == 404


# --- the page for a hand-made Dashboard ---------------------------------------------------------------------

def tile_of(html: str, key: str) -> str:
    return re.search(rf'<div class="card ins-tile [^"]*" data-testid="tile-{key}".*?</div>', html, re.S).group(0)


def test_it_shows_each_tile_with_its_previous_value_and_whether_it_got_better(agent):
    html = render(agent, handmade_dashboard())
    tile = tile_of(html, "sla_compliance")
    assert "87.5 %" in tile and "80.0 %" in tile and "Better" in tile and "35 of 40 clocks" in tile
    assert "ins-trend-better" in tile and "#i-arrow-up" in tile
    slower = tile_of(html, "resolve_mean")
    assert "5 h 30 min" in slower and "Worse" in slower and "#i-arrow-up" in slower and "4 h" in slower
    volume = tile_of(html, "opened")
    assert "Up from" in volume and "ins-trend-none" in volume
    same = tile_of(html, "csat_average")
    assert "Same as" in same
    unmeasured = tile_of(html, "fcr_rate")
    assert "Previous period:" in unmeasured and "50.0 %" in unmeasured


def test_it_gives_every_chart_a_caption_a_numbers_table_and_exports(agent):
    d = handmade_dashboard()
    html = render(agent, d)
    canvases = re.findall(r"<canvas [^>]*>", html)
    assert len(canvases) == 10
    for canvas in canvases:
        assert 'role="img"' in canvas
        caption = re.search(r'aria-labelledby="([^"]+)"', canvas).group(1)
        text = re.search(rf'<figcaption id="{caption}">(.*?)</figcaption>', html, re.S).group(1)
        assert len(text) > 60, caption
    assert html.count("<summary>The numbers</summary>") == 10
    for slug in ("backlog", "times", "sla", "satisfaction", "comments", "by-service", "by-source", "categories",
                 "workload", "measures"):
        for fmt in ("csv", "xlsx"):
            assert f"/agent/insights/export/{slug}/?from={d.scope.date_from.isoformat()}" in html
            assert re.search(rf'/agent/insights/export/{slug}/\?[^"]*export={fmt}"', html), (slug, fmt)


def test_it_says_the_key_numbers_in_the_captions(agent):
    html = render(agent, handmade_dashboard())
    backlog = re.search(r'<figcaption id="ins-backlog-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert "56 opened, 42 ended" in backlog and "from 20 to 32" in backlog  # 5..11 opened, 3..9 ended
    sla = re.search(r'<figcaption id="ins-sla-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert "94.2 % overall (49 met, 3 breached)" in sla and "lowest 87.5 %" in sla
    resolve = re.search(r'<figcaption id="ins-resolve-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert "incident P1 2 h 30 min (90 % within 6 h)" in resolve and "request P3 20 h" in resolve
    assert "incident P3 30 h (90 % within 2 d 4 h)" in resolve
    rates = re.search(r'<figcaption id="ins-rates-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert "first-contact resolution 70.0 % (21 of 30)" in rates and "automation 55.6 % (5 of 9)" in rates
    source = re.search(r'<figcaption id="ins-by-source-caption">(.*?)</figcaption>', html, re.S).group(1)
    assert "monitoring 9 (29 %)" in source and "people 22 (71 %)" in source


def test_it_puts_the_exact_figures_in_the_tables_and_the_chart_data(agent):
    d = handmade_dashboard()
    html = render(agent, d)
    assert '<td class="num" data-testid="ins-rate-deflection">25.0 %</td>' in html
    assert "<td>P1</td><td class=\"num\">4</td><td class=\"num\">2 h 30 min</td><td class=\"num\">6 h</td>" in html
    data = json.loads(re.search(r'<script id="insights-chart-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    assert data["backlog"]["opened"] == [5, 6, 7, 8, 9, 10, 11]
    assert data["backlog"]["labels"][0] == d.scope.date_from.isoformat()
    assert data["resolve"]["p90"] == [6.0, 52.0, 40.0]
    assert data["respond"]["labels"] == ["Incident P1", "Incident P3"]  # requests have no first response
    assert data["rates"]["values"] == [70.0, 10.0, 25.0, 55.6]
    assert data["satisfaction"]["values"] == [1, 1, 1, 4, 3]
    assert data["workload"] == {"labels": ["Agnes Agent", "Bob Keller"], "open": [6, 2], "resolved": [11, 14]}


def test_it_lists_the_latest_comments_escaped_with_links(agent):
    html = render(agent, handmade_dashboard())
    assert "Took three days &lt;b&gt;to call&lt;/b&gt; back" in html
    assert '<a href="/agent/incidents/INC-000042/">INC-000042</a>' in html
    assert 'data-testid="ins-csat-average">3.90' in html


def test_it_says_the_figures_freshness(agent):
    d = handmade_dashboard()
    html = render(agent, d)
    assert "Counted as of" in html and f"{d.rolled_at:%H:%M}" in html
    assert "has not run yet" in render(agent, handmade_dashboard(empty=True))


def test_it_says_what_would_appear_where_there_is_nothing_to_chart(agent):
    html = render(agent, handmade_dashboard(empty=True))
    assert "<canvas" not in html
    for name in ("backlog", "resolve", "respond", "sla", "rates", "satisfaction", "by-service", "by-source",
                 "categories", "workload"):
        assert f'data-testid="ins-{name}-empty"' in html, name
    assert "appear here" in html and 'data-testid="ins-comments-empty"' in html


def test_it_offers_a_weekly_email_of_the_chosen_team_and_service(agent):
    html = render(agent, handmade_dashboard())
    form = re.search(r'<form method="post" action="([^"]+)" class="ins-subscribe".*?</form>', html, re.S)
    assert form.group(1) == reverse("agent:insights_subscription")
    assert "csrfmiddlewaretoken" in form.group(0) and "Email me this weekly" in form.group(0)


def test_it_links_quick_periods_keeping_team_and_service(agent):
    html = render(agent, handmade_dashboard(), {"team": "3", "service": "9"})
    today = timezone.localdate()
    seven = re.search(r'href="([^"]+)" class="ins-quick-link[^"]*"[^>]*data-testid="ins-quick-7"', html).group(1)
    assert seven == (f"?from={(today - timedelta(days=6)).isoformat()}&amp;to={today.isoformat()}"
                    "&amp;team=3&amp;service=9")
    quarter = re.search(r'href="\?from=([0-9-]+)[^"]*"[^>]*data-testid="ins-quick-quarter"', html).group(1)
    assert quarter.endswith("-01") and int(quarter[5:7]) in (1, 4, 7, 10)


@pytest.mark.parametrize(("hours", "words"), [(None, "–"), (0.2, "12 min"), (1.0, "1 h"), (3.34, "3 h 20 min"),
                                              (47.9, "47 h 54 min"), (52.0, "2 d 4 h"), (72.0, "3 d")])
def test_it_says_durations_in_words(hours, words):
    assert hours_words(hours) == words


# --- the page on real figures (the lead's hand-computed week of test_measures, rolled up; conftest.py) ---------

from tests.insights.conftest import at  # noqa: E402


def week_query(week, **extra):
    return {"from": week["days"][0].isoformat(), "to": week["days"][-1].isoformat(), **extra}


def test_it_shows_the_figures_of_the_rolled_up_week(client, week):
    from insights.rollup import rollup_rebuild

    rollup_rebuild()
    client.force_login(week["boss"])
    response = client.get(URL, week_query(week))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-testid="tile-resolve_p90-value">28 h 48 min<', html)
    assert re.search(r'data-testid="tile-sla_compliance-value">66.7 %<', html)
    assert "1 of 3 incidents raised by people resolved" in html
    assert "7 opened" not in html and "5 opened, 4 ended" in html  # backlog caption: I1..I4, I6; I1, I2, I3, I6
    assert "Quick!" in html and f'href="/agent/incidents/{week["incidents"][0].number}/"' in html
    assert "portal 4 (80 %) and monitoring 1 (20 %)" in html
    data = json.loads(re.search(r'<script id="insights-chart-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    assert data["backlog"]["backlog"] == [2, 2, 2, 2, 2, 2, 2]
    assert data["satisfaction"]["values"] == [0, 0, 1, 0, 1]


def test_it_shows_an_agent_only_their_teams_figures(client, week):
    from insights.rollup import rollup_rebuild

    rollup_rebuild()
    client.force_login(week["agent_a"])
    html = client.get(URL, week_query(week)).content.decode()
    assert re.search(r'data-testid="tile-opened-value">4<', html)  # team B's monitoring incident left out
    assert team_choices(html) == ["All my teams", "Team A"]
    assert client.get(URL, week_query(week, team=week["team_b"].id)).status_code == 400


def test_it_runs_as_many_queries_for_a_thousand_tickets_as_for_a_few(client, week):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.services import incident_create
    from insights.rollup import rollup_rebuild

    rollup_rebuild()
    client.force_login(week["boss"])
    query = week_query(week)
    client.get(URL, query)  # warm the content-type cache and the session
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL, query).status_code == 200
    boss, team = week["boss"], week["team_a"]
    for n in range(40):
        incident_create(title=f"More {n}", requester=boss, created_by=boss, assignment_group=team,
                        now=at(week["days"][n % 7], 8 + n % 10))
    rollup_rebuild()
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL, query).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(few) <= 40


# --- exports ------------------------------------------------------------------------------------------------

def test_it_exports_a_table_as_csv_for_the_same_scope(client, week):
    from insights.rollup import rollup_rebuild

    rollup_rebuild()
    client.force_login(week["boss"])
    response = client.get(reverse("agent:insights_export", args=["by-service"]), week_query(week, export="csv"))
    assert response.status_code == 200
    assert f"insights-by-service-{week['days'][0].isoformat()}" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = [line for line in body.splitlines() if line]
    assert lines == ["Service,Opened,Resolved", "Email,3,2", "No service,1,0", "VPN,1,1"]
    # An agent of team A exports only team A's figures.
    client.force_login(week["agent_a"])
    response = client.get(reverse("agent:insights_export", args=["by-source"]), week_query(week, export="csv"))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert [line for line in body.splitlines() if line] == ["Source,Opened,Resolved", "Portal,4,3"]


def test_it_exports_a_table_as_xlsx(client, week):
    from io import BytesIO

    from openpyxl import load_workbook

    from insights.rollup import rollup_rebuild

    rollup_rebuild()
    client.force_login(week["boss"])
    response = client.get(reverse("agent:insights_export", args=["backlog"]), week_query(week, export="xlsx"))
    assert response.status_code == 200
    sheet = load_workbook(BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Day", "Opened", "Resolved or closed", "Open at end of day")
    assert [r[1:] for r in rows[1:]] == [(2, 1, 2), (1, 1, 2), (1, 1, 2), (1, 1, 2), (0, 0, 2), (0, 0, 2), (0, 0, 2)]


def test_it_answers_400_naming_export_for_another_format(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("agent:insights_export", args=["backlog"]), {"export": "pdf"})
    assert response.status_code == 400 and response.content.decode().startswith("export: ")


# --- review fixes -----------------------------------------------------------------------------------------------

def subscribe_form(html: str) -> tuple[str, dict, str]:
    """The dashboard's "Email me this weekly" form: (action, its fields, the button's title)."""
    form = re.search(r'<form method="post" action="([^"]+)" class="ins-subscribe".*?</form>', html, re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))
    title = re.search(r'<button[^>]*title="([^"]*)"', form.group(0)).group(1)
    return form.group(1), {k: v.replace("&amp;", "&") for k, v in fields.items()}, title


def test_email_me_this_weekly_posts_what_the_view_needs_and_comes_back(client, agent, teams):
    from insights.models import Subscription

    client.force_login(agent)
    desk = teams["Service Desk"]
    today = timezone.localdate()
    query = {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat(), "team": desk.id}
    page = client.get(URL, query)
    action, fields, _ = subscribe_form(page.content.decode())
    assert fields["action"] == "subscribe" and fields["team"] == str(desk.id)
    fields.pop("csrfmiddlewaretoken", None)
    response = client.post(action, fields)
    assert response.status_code == 302
    assert response["Location"] == fields["next"] and response["Location"].startswith(URL + "?")
    assert f"team={desk.id}" in response["Location"]
    made = Subscription.objects.get(user=agent)
    assert (made.team, made.service, made.weekday, made.hour, made.active) == (desk, None, 0, 7, True)


def test_email_me_this_weekly_keeps_the_day_and_hour_already_chosen(client, agent, teams):
    from insights.models import Subscription
    from insights.subscriptions import subscription_set

    desk = teams["Service Desk"]
    subscription_set(user=agent, team=desk, weekday=3, hour=9)
    client.force_login(agent)
    action, fields, _ = subscribe_form(client.get(URL, {"team": desk.id}).content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    assert client.post(action, fields).status_code == 302
    made = Subscription.objects.get(user=agent)
    assert (made.team, made.weekday, made.hour) == (desk, 3, 9)


def test_the_button_says_the_forms_default_day_and_hour(agent, monkeypatch):
    from insights.forms import SubscriptionForm

    assert "every Monday at 07:00" in subscribe_form(render(agent, handmade_dashboard()))[2]
    monkeypatch.setattr(SubscriptionForm.base_fields["weekday"], "initial", 3)
    monkeypatch.setattr(SubscriptionForm.base_fields["hour"], "initial", 18)
    assert "every Thursday at 18:00" in subscribe_form(render(agent, handmade_dashboard()))[2]


@pytest.mark.parametrize(("query", "field"), [
    ({"to": "0001-01-05"}, "to"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ({"to": "9999-12-31"}, "to"),
    ({"from": "1999-12-31", "to": "2000-01-10"}, "from"),
])
def test_a_date_out_of_range_is_a_400_naming_it_not_a_500(client, admin_user, query, field):
    client.force_login(admin_user)
    response = client.get(URL, query)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-field="{field}"' in html and "out of range" in html
    export = client.get(reverse("agent:insights_export", args=["backlog"]), query)
    assert export.status_code == 400
    assert any(line.startswith(f"{field}: ") for line in export.content.decode().splitlines())


def test_the_first_and_last_dates_accepted_draw_the_page(client, admin_user):
    from servicedesk.periods import FIRST_DAY, last_day

    client.force_login(admin_user)
    today = timezone.localdate()
    first = {"from": FIRST_DAY.isoformat(), "to": (FIRST_DAY + timedelta(days=1)).isoformat()}
    assert client.get(URL, first).status_code == 200
    last = {"from": (last_day(today) - timedelta(days=3)).isoformat(), "to": last_day(today).isoformat()}
    assert client.get(URL, last).status_code == 200
    assert client.get(URL, {"to": FIRST_DAY.isoformat()}).status_code == 200  # the default from is not before
