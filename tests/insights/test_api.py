"""GET /api/v1/insights/measures/: the dashboard's measures for scripts and BI tools, with the page's
permissions."""

import pytest

from insights.rollup import rollup_rebuild

pytestmark = pytest.mark.django_db
URL = "/api/v1/insights/measures/"


def week_query(week, **extra):
    return {"from": week["days"][0].isoformat(), "to": week["days"][-1].isoformat(), **extra}


def test_it_answers_every_measure_of_the_hand_computed_week(client_for, week):
    rollup_rebuild()
    response = client_for(week["boss"]).get(URL, week_query(week))
    assert response.status_code == 200, response.content
    body = response.json()
    measures = {m["key"]: m for m in body["measures"]}
    assert (measures["opened"]["value"], measures["resolve_p90"]["value"], measures["fcr_rate"]["value"]) == \
        (5, 28.8, 33.3)
    assert measures["resolve_p90"]["display"] == "28 h 48 min" and measures["resolve_p90"]["better"] == "lower"
    assert measures["opened"]["previous"] == 1  # I5, raised three days before the week
    assert (body["from"], body["team"]) == (week["days"][0].isoformat(), "All teams")
    assert body["counted_at"] is not None


def test_an_agent_gets_their_teams_and_a_400_naming_another_team(client_for, week):
    rollup_rebuild()
    api = client_for(week["agent_a"])
    mine = {m["key"]: m["value"] for m in api.get(URL, week_query(week)).json()["measures"]}
    assert (mine["opened"], mine["backlog"]) == (4, 1)
    refused = api.get(URL, week_query(week, team=week["team_b"].id))
    assert refused.status_code == 400 and "team" in refused.json()
    bad = api.get(URL, {"from": "yesterday"})
    assert bad.status_code == 400 and "from" in bad.json()


def test_requesters_and_strangers_get_nothing(client_for, api_client, requester):
    assert client_for(requester).get(URL).status_code == 403
    assert api_client.get(URL).status_code == 401
