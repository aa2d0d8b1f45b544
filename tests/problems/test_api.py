import pytest

from problems import services
from problems.models import Problem
from servicedesk.models import OutboxMessage, Service, Team, TeamMembership

pytestmark = pytest.mark.django_db

URL = "/api/v1/problems/"


@pytest.fixture
def api(client_for, agent):
    return client_for(agent)


def detail(problem, action=""):
    return f"{URL}{problem.number}/" + (f"{action}/" if action else "")


def test_an_agent_creates_a_problem_from_incident_numbers(api, incident_factory, agent):
    first, second = incident_factory(), incident_factory()
    vpn = Service.objects.create(name="VPN")
    response = api.post(URL, {"title": "VPN drops hourly", "impact": 1, "urgency": 2, "services": ["VPN"],
                              "incidents": [first.number, second.number.lower()]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"].startswith("PRB") and body["status"] == "new" and body["priority"] == 2
    assert sorted(body["incidents"]) == sorted([first.number, second.number])
    assert body["services"] == [vpn.name] and body["version"] >= 1
    assert body["analysis"] == {"five_whys": [], "fishbone": {}, "timeline": []}
    assert body["created_by"]["username"] == agent.username


def test_creating_with_the_same_idempotency_key_makes_one_problem(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "prb-create-1"}
    first = api.post(URL, {"title": "Mail delays"}, format="json", **headers)
    again = api.post(URL, {"title": "Mail delays"}, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == first.json()["number"]
    assert Problem.objects.count() == 1


def test_unknown_incident_numbers_are_a_400_naming_them_and_nothing_is_made(api, incident_factory):
    known = incident_factory()
    response = api.post(URL, {"title": "X", "incidents": [known.number, "INC9999999"]}, format="json")
    assert response.status_code == 400
    assert "INC9999999" in str(response.json()["incidents"])
    assert not Problem.objects.exists()


def test_link_adds_incidents_and_names_unknown_numbers(api, agent, incident_factory):
    problem = services.problem_create(title="VPN drops", created_by=agent)
    incident = incident_factory()
    bad = api.post(detail(problem, "link"), {"incidents": ["INC0000000"]}, format="json")
    assert bad.status_code == 400 and "INC0000000" in str(bad.json()["incidents"])
    response = api.post(detail(problem, "link"), {"incidents": [incident.number]}, format="json")
    assert response.status_code == 200
    assert response.json()["incidents"] == [incident.number]


def test_patch_needs_the_version_and_a_stale_one_is_a_409(api, agent):
    problem = services.problem_create(title="VPN drops", created_by=agent)
    missing = api.patch(detail(problem), {"root_cause": "Rekey"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()
    ok = api.patch(detail(problem), {"version": problem.version, "root_cause": "Rekey mismatch",
                                     "analysis": {"five_whys": ["It drops"]}}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["root_cause"] == "Rekey mismatch" and ok.json()["version"] == problem.version + 1
    assert ok.json()["analysis"]["five_whys"] == ["It drops"]
    stale = api.patch(detail(problem), {"version": problem.version, "title": "Lost"}, format="json")
    assert stale.status_code == 409
    assert Problem.objects.get(id=problem.id).title == "VPN drops"


def test_patch_refuses_status_and_names_a_bad_analysis_section(api, agent):
    problem = services.problem_create(title="VPN drops", created_by=agent)
    status = api.patch(detail(problem), {"version": problem.version, "status": "closed"}, format="json")
    assert status.status_code == 400 and "status" in status.json()
    bad = api.patch(detail(problem), {"version": problem.version, "analysis": {"fishbone": ["x"]}}, format="json")
    assert bad.status_code == 400 and "analysis.fishbone" in bad.json()


def test_known_error_is_a_400_naming_the_fields_until_a_cause_or_workaround_exists(api, agent):
    problem = services.problem_create(title="VPN drops", created_by=agent)
    refused = api.post(detail(problem, "known-error"), {}, format="json")
    assert refused.status_code == 400
    assert "root_cause" in refused.json() and "workaround" in refused.json()["detail"]
    services.problem_update(problem_id=problem.id, actor=agent, workaround="Reconnect")
    accepted = api.post(detail(problem, "known-error"), {}, format="json")
    assert accepted.status_code == 200 and accepted.json()["status"] == "known_error"


def test_the_lifecycle_through_the_actions(api, agent, incident_factory, fixed_code):
    problem = services.problem_create(title="VPN drops", created_by=agent, incidents=[incident_factory()])
    assert api.post(detail(problem, "investigate"), {}, format="json").json()["status"] == "investigating"
    missing = api.post(detail(problem, "resolve"), {}, format="json")
    assert missing.status_code == 400 and "resolution_notes" in missing.json()
    resolved = api.post(detail(problem, "resolve"), {"resolution_notes": "Fixed the gateway",
                                                     "resolve_incidents": True}, format="json")
    assert resolved.status_code == 200
    assert resolved.json()["resolution_code"] == "fixed" and resolved.json()["status"] == "resolved"
    assert OutboxMessage.objects.filter(handler="problems.resolve_incidents").count() == 1
    assert api.post(detail(problem, "close"), {"version": 1}, format="json").status_code == 409  # stale
    reopened = api.post(detail(problem, "reopen"), {"reason": "Back again"}, format="json")
    assert reopened.json()["status"] == "investigating"
    assert api.post(detail(problem, "close"), {}, format="json").status_code == 409  # not allowed from here


def test_requesters_get_403_everywhere(client_for, requester, agent):
    problem = services.problem_create(title="VPN drops", created_by=agent)
    api = client_for(requester)
    assert api.get(URL).status_code == 403
    assert api.post(URL, {"title": "Mine"}, format="json").status_code == 403
    assert api.get(detail(problem)).status_code == 403
    assert api.patch(detail(problem), {"version": 1, "title": "x"}, format="json").status_code == 403
    for action in ("link", "known-error", "resolve", "investigate", "close", "reopen"):
        assert api.post(detail(problem, action), {}, format="json").status_code == 403
    assert api.get("/api/v1/known-errors/?q=vpn").status_code == 403
    assert Problem.objects.get(id=problem.id).title == "VPN drops"


def test_the_list_filters(api, agent, make_user, incident_factory):
    network = Team.objects.create(name="Network")
    TeamMembership.objects.create(team=network, user=agent)
    vpn = Service.objects.create(name="VPN")
    a = services.problem_create(title="VPN drops hourly", created_by=agent, impact=1, urgency=1, services=[vpn],
                                assignment_group=network, assignee=agent)
    b = services.problem_create(title="Printer queue stalls", created_by=agent)
    services.problem_investigate(problem_id=b.id, actor=agent)

    def numbers(query):
        response = api.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return [row["number"] for row in response.json()["results"]]

    assert numbers("") == [b.number, a.number]
    assert numbers("status=investigating") == [b.number]
    assert numbers("priority=1") == [a.number]
    assert numbers(f"assignment_group={network.id}") == [a.number]
    assert numbers(f"assignee={agent.username}") == [a.number]
    assert numbers(f"service={vpn.id}") == [a.number]
    assert numbers("q=printer") == [b.number]
    assert numbers(f"q={a.number}") == [a.number]


def test_the_list_costs_the_same_queries_for_one_problem_or_twenty(api, agent, incident_factory,
                                                                   django_assert_num_queries):
    vpn = Service.objects.create(name="VPN")
    incidents = [incident_factory() for _ in range(3)]
    first = services.problem_create(title="Problem 0", created_by=agent, services=[vpn], incidents=incidents)
    api.get(URL)  # warm the token and content-type caches

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert len(api.get(URL).json()["results"]) == 1
    for n in range(1, 20):
        other = services.problem_create(title=f"Problem {n}", created_by=agent, services=[vpn],
                                        incidents=incidents[:2])
        services.problem_link_problem(problem_id=first.id, other_id=other.id, actor=agent)
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(api.get(URL).json()["results"]) == 20


def test_known_errors_are_ranked_for_agents(api, agent):
    def known(title, workaround):
        problem = services.problem_create(title=title, created_by=agent)
        services.problem_update(problem_id=problem.id, actor=agent, workaround=workaround)
        return services.problem_known_error(problem_id=problem.id, actor=agent)

    in_workaround = known("Jobs stuck", "Restart the printer spooler")
    in_title = known("Printer drops jobs", "Reprint")
    services.problem_create(title="Printer not yet known", created_by=agent)
    response = api.get("/api/v1/known-errors/?q=printer")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["number"] for row in rows] == [in_title.number, in_workaround.number]
    assert rows[0]["rank"] > rows[1]["rank"] and rows[0]["workaround"] == "Reprint"


def test_unlink_removes_one_incident(api, agent, incident_factory):
    incident = incident_factory()
    problem = services.problem_create(title="VPN drops", created_by=agent, incidents=[incident])
    bad = api.post(detail(problem, "unlink"), {"incident": "INC0000000"}, format="json")
    assert bad.status_code == 400 and "incident" in bad.json()
    response = api.post(detail(problem, "unlink"), {"incident": incident.number}, format="json")
    assert response.status_code == 200 and response.json()["incidents"] == []
