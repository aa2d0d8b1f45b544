"""The incident page names people as people: full names in the timeline, a long email wrapped between its
parts, never inside a word."""

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG_EMAIL = "maximiliana.von-hohenzollern-sigmaringen@procurement-department.example-corporation.com"

# For each word of the element's text, how many line boxes it spans (1 unless the browser split it).
WORD_LINES = """element => {
  const out = {};
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(/[A-Za-z]+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      out[match[0]] = Math.max(out[match[0]] || 0, tops.size);
    }
  }
  return out;
}"""


def test_the_incident_page_names_people_and_wraps_a_long_email_between_words(page, live_server):
    from incidents.services import incident_assign, incident_create
    from servicedesk.models import Team

    maxi = provision_user("maximiliana", "requester", name="Maximiliana von Hohenzollern", email=LONG_EMAIL)
    ada = provision_user("ada", "agent", name="Ada Lovelace")
    nina = provision_user("nina", "agent", name="Nina Netwright", teams=["Network"])
    incident = incident_create(title="VPN is very slow from home", description="Since Monday.", requester=maxi,
                               created_by=maxi)
    incident_assign(incident_id=incident.id, actor=ada, assignment_group=Team.objects.get(name="Network"),
                    assignee=nina)
    incident_assign(incident_id=incident.id, actor=ada, assignment_group=Team.objects.get(name="Service Desk"),
                    assignee=ada)

    login(page, live_server, "ada")
    page.goto(f"{live_server.url}/agent/incidents/{incident.number}/")

    changes = page.get_by_test_id("timeline-entry").and_(page.locator("[data-kind=change]"))
    expect(changes.first).to_contain_text("Assignee — → Nina Netwright")
    expect(changes.last).to_contain_text("Assignee Nina Netwright → Ada Lovelace")
    expect(page.get_by_test_id("timeline")).not_to_contain_text("nina")
    # Names are set in the page's text face, not in monospace like codes and numbers.
    family = changes.first.locator(".val").last.evaluate("e => getComputedStyle(e).fontFamily")
    assert "mono" not in family.lower()

    email = page.get_by_test_id("requester-email")
    expect(email).to_have_text(LONG_EMAIL)
    lines = email.evaluate(WORD_LINES)
    assert email.evaluate("e => e.getClientRects().length && e.getBoundingClientRect().height") > 30  # it wraps
    assert {word: n for word, n in lines.items() if n != 1} == {}  # ...and no word is cut in two
    box, panel = email.bounding_box(), page.get_by_test_id("key-facts").bounding_box()
    assert box["x"] + box["width"] <= panel["x"] + panel["width"]
    screenshot(page, "incident-people-names")
