"""The requester's page of a service request in the portal: what was ordered, the answers, the public
history, cancelling; nobody else's request."""

import pytest

from requests_app.models import ServiceRequest
from requests_app.services import request_submit
from servicedesk.models import TimelineEntry
from servicedesk.registry import registry
from servicedesk.services import timeline_add
from tests.requests_app.factories import item

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "model", "label": "Model", "type": "choice", "required": True, "choices": "13 inch\n15 inch"},
    {"name": "extras", "label": "Accessories", "type": "multi_choice", "required": False,
     "choices": "Dock\nMouse"},
    {"name": "urgent", "label": "Urgent", "type": "boolean", "required": False},
]


@pytest.fixture
def ordered(requester):
    laptop = item("New laptop", fields=FIELDS)
    return request_submit(item=laptop, answers={"model": "15 inch", "extras": ["Dock", "Mouse"], "urgent": False},
                          requester=requester, created_by=requester)


def signed_in(client, user):
    client.force_login(user)  # the portal is used with a session
    return client


def test_the_requester_sees_the_item_answers_and_public_history_but_no_internal_note(client, ordered, agent):
    timeline_add(ticket=ordered, kind=TimelineEntry.Kind.NOTE, author=agent, body="Budget checked by finance")
    page = signed_in(client, ordered.requester).get(f"/portal/requests/{ordered.number}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ordered.number in html and "New laptop" in html
    for text in ("Model", "15 inch", "Accessories", "Dock, Mouse", "Urgent", "No"):
        assert text in html
    assert "Budget checked by finance" not in html
    assert 'data-testid="request-cancel"' in html
    rows = next(s for s in registry.sources if s.key == "requests").mine(ordered.requester, 10)
    assert rows[0].url == f"/portal/requests/{ordered.number}/"


def test_another_requesters_request_is_404_and_cannot_be_cancelled(client, ordered, other_requester):
    client = signed_in(client, other_requester)
    assert client.get(f"/portal/requests/{ordered.number}/").status_code == 404
    assert client.post(f"/portal/requests/{ordered.number}/cancel/").status_code == 404
    assert ServiceRequest.objects.get(id=ordered.id).status == "in_fulfilment"


def test_the_requester_cancels_and_the_page_says_so(client, ordered):
    client = signed_in(client, ordered.requester)
    response = client.post(f"/portal/requests/{ordered.number}/cancel/", {"reason": "Found a spare one"},
                           follow=True)
    assert ServiceRequest.objects.get(id=ordered.id).status == "cancelled"
    html = response.content.decode()
    assert f"{ordered.number} is cancelled." in html
    assert "Cancelled: Found a spare one" in html
    assert 'data-testid="request-cancel"' not in html
    again = client.post(f"/portal/requests/{ordered.number}/cancel/", follow=True)
    assert "can no longer be cancelled" in again.content.decode()
