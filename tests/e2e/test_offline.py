"""Pages load nothing from outside the machine: every request the browser makes goes to the server itself."""

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def watch_hosts(page) -> set:
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    return hosts


def test_it_loads_the_api_docs_only_from_the_local_server(page, live_server):
    provision_user("ada", "agent", name="Ada Agent")
    hosts = watch_hosts(page)
    login(page, live_server, "ada")

    page.goto(f"{live_server.url}/api/docs/", wait_until="networkidle")
    incidents = page.locator("#operations-tag-incidents")  # by id: other groups' descriptions name incidents too
    expect(incidents).to_be_visible()
    expect(page.locator("#operations-tag-auth")).to_be_visible()
    incidents.click()  # collapse and reopen: lazy parts load now
    incidents.click()
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-docs-grouped")
    # The old Redoc page pulled Google fonts and the Redocly logo from their CDNs: it is gone.
    assert page.goto(f"{live_server.url}/api/redoc/").status == 404

    assert hosts == {urlparse(live_server.url).netloc}
