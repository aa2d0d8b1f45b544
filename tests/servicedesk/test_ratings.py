"""Satisfaction ratings (servicedesk.services.rating_give): the requester rates a resolved incident or a
fulfilled request 1-5 with a comment, once (changed within the window), in the portal and the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services as incident_services
from requests_app.services import request_fulfil, request_submit
from servicedesk.errors import InvalidInput, NotAllowed, TransitionNotAllowed
from servicedesk.models import AuditLog, Rating, TimelineEntry
from servicedesk.services import rating_give
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db


@pytest.fixture
def fulfilled(requester, agent):
    made = request_submit(item=item("Headset"), answers={}, requester=requester, created_by=requester)
    return request_fulfil(request_id=made.id, actor=agent, note="Left on your desk")


@pytest.fixture
def resolved(incident_factory, agent):
    incident = incident_factory()
    return incident_services.incident_resolve(incident_id=incident.id, actor=agent, resolution_code="fixed",
                                              resolution_notes="Cleared the jam")


def test_the_requester_rates_a_fulfilled_request_and_agents_read_it_on_the_timeline(fulfilled, requester):
    rating = rating_give(ticket=fulfilled, by=requester, score=4, comment="Quick, thanks")
    assert (rating.score, rating.comment, rating.number, rating.by) == (4, "Quick, thanks", fulfilled.number, requester)
    entry = TimelineEntry.objects.filter(object_id=fulfilled.id, data__event="rating").get()
    assert entry.body == "Rated 4/5: Quick, thanks" and not entry.internal
    assert AuditLog.objects.filter(action="rating.given", object_id=str(fulfilled.id)).exists()


def test_rating_again_within_the_window_changes_it_and_a_resend_changes_nothing(fulfilled, requester):
    rating_give(ticket=fulfilled, by=requester, score=2, comment="Slow")
    rating_give(ticket=fulfilled, by=requester, score=5, comment="It works now")
    rating_give(ticket=fulfilled, by=requester, score=5, comment="It works now")
    assert Rating.objects.get().score == 5
    bodies = list(TimelineEntry.objects.filter(data__event="rating").values_list("body", flat=True))
    assert bodies == ["Rated 2/5: Slow", "Changed the rating to 5/5: It works now"]


def test_after_the_window_the_rating_is_kept_as_given(fulfilled, requester, settings):
    settings.RATING_CHANGE_DAYS = 14
    rating_give(ticket=fulfilled, by=requester, score=3, now=timezone.now() - timedelta(days=15))
    with pytest.raises(TransitionNotAllowed):
        rating_give(ticket=fulfilled, by=requester, score=5)
    assert Rating.objects.get().score == 3


@pytest.mark.parametrize("score", [0, 6, "five", None, True, "3.5"])
def test_a_score_outside_1_to_5_is_refused_naming_score_and_nothing_is_stored(fulfilled, requester, score):
    with pytest.raises(InvalidInput) as error:
        rating_give(ticket=fulfilled, by=requester, score=score)
    assert error.value.field == "score"
    assert not Rating.objects.exists()


def test_only_the_requester_rates_and_only_once_resolved(fulfilled, requester, other_requester, agent,
                                                         incident_factory):
    with pytest.raises(NotAllowed):
        rating_give(ticket=fulfilled, by=agent, score=5)
    with pytest.raises(NotAllowed):
        rating_give(ticket=fulfilled, by=other_requester, score=5)
    with pytest.raises(TransitionNotAllowed):
        rating_give(ticket=incident_factory(), by=requester, score=5)
    assert not Rating.objects.exists()


def test_the_database_refuses_a_second_rating_of_a_ticket_and_a_score_of_six(fulfilled, requester):
    from django.db import IntegrityError, transaction

    rating = rating_give(ticket=fulfilled, by=requester, score=4)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(content_type=rating.content_type, object_id=rating.object_id, number="x", score=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.filter(id=rating.id).update(score=6)


def test_the_api_rates_a_request_and_an_incident(fulfilled, resolved, requester, client_for):
    api = client_for(requester)
    response = api.post(f"/api/v1/requests/{fulfilled.number}/rating/", {"score": 5, "comment": "Great"},
                        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["score"] == 5 and response.json()["by"]["username"] == "alice"
    assert api.post(f"/api/v1/requests/{fulfilled.number}/rating/", {"score": 4}, format="json").status_code == 200
    assert api.get(f"/api/v1/requests/{fulfilled.number}/rating/").json()["score"] == 4
    response = api.post(f"/api/v1/incidents/{resolved.number}/rating/", {"score": 1, "comment": "Took days"},
                        format="json")
    assert response.status_code == 201 and response.json()["number"] == resolved.number


def test_the_api_says_which_field_is_wrong_who_may_rate_and_hides_anothers_ticket(
        fulfilled, requester, other_requester, agent, client_for):
    url = f"/api/v1/requests/{fulfilled.number}/rating/"
    bad = client_for(requester).post(url, {"score": 9}, format="json")
    assert bad.status_code == 400 and "score" in bad.json()
    assert client_for(agent).post(url, {"score": 5}, format="json").status_code == 403
    assert client_for(other_requester).post(url, {"score": 5}, format="json").status_code == 404
    assert client_for(requester).get(url).status_code == 404  # not rated yet


def test_the_portal_pages_show_the_form_once_resolved_and_record_the_rating(client, fulfilled, resolved, requester):
    client.force_login(requester)
    page = client.get(f"/portal/requests/{fulfilled.number}/").content.decode()
    assert 'data-testid="rating-form"' in page and 'for="rating-comment-' in page
    response = client.post(f"/portal/rate/{fulfilled.number}/",
                           {"score": "4", "comment": "Fine", "next": f"/portal/requests/{fulfilled.number}/"})
    assert response.status_code == 302 and response.url == f"/portal/requests/{fulfilled.number}/#rating"
    page = client.get(f"/portal/requests/{fulfilled.number}/").content.decode()
    assert 'data-score="4"' in page
    page = client.get(f"/portal/incidents/{resolved.number}/").content.decode()
    assert 'data-testid="rating-form"' in page
    client.post(f"/portal/rate/{resolved.number}/", {"score": "5"})
    assert Rating.objects.get(number=resolved.number).score == 5


def test_the_portal_shows_no_form_before_resolution_and_another_person_gets_404(client, incident_factory,
                                                                                 fulfilled, other_requester):
    incident = incident_factory()
    client.force_login(incident.requester)
    assert 'data-testid="rating-form"' not in client.get(f"/portal/incidents/{incident.number}/").content.decode()
    client.force_login(other_requester)
    assert client.post(f"/portal/rate/{fulfilled.number}/", {"score": "5"}).status_code == 404
    assert client.post("/portal/rate/XYZ123/", {"score": "5"}).status_code == 404
    assert not Rating.objects.exists()


def test_agents_read_the_rating_on_the_incidents_timeline_in_the_workspace(client, resolved, requester, agent):
    rating_give(ticket=resolved, by=requester, score=2, comment="Came back twice")
    client.force_login(agent)
    html = client.get(f"/agent/incidents/{resolved.number}/").content.decode()
    assert "Rated 2/5: Came back twice" in html
