"""The original-mail page for agents (/agent/mail/<id>/), its sandboxed HTML (html/) and its image parts
(part/<n>/), with PARSE's hand-written Thunderbird-like sample (an inline cid: logo, a PDF and a PNG)."""

import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from email_channel.models import InboundMessage, Mailbox

SAMPLES = Path(__file__).parent / "samples"
FRAME_CSP = "sandbox; default-src 'none'; img-src 'self'"


def store(raw: bytes, **fields) -> InboundMessage:
    mailbox, _ = Mailbox.objects.get_or_create(name="Helpdesk", defaults={"address": "helpdesk@example.com"})
    return InboundMessage.objects.create(mailbox=mailbox, source=InboundMessage.Source.IMAP, raw=raw,
                                         size=len(raw), uidvalidity=7, uid=1, **fields)


@pytest.fixture
def with_images(db):
    return store((SAMPLES / "attachments.eml").read_bytes(), subject="Rechnung fehlt im Portal",
                 from_address="anna.schmidt@example.org")


def test_agent_sees_headers_state_text_parts_and_the_sandboxed_frame(agent_client, with_images):
    response = agent_client.get(f"/agent/mail/{with_images.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    for header, value in [("from", "Anna Schmidt &lt;anna.schmidt@example.org&gt;"), ("to", "helpdesk@example.com"),
                          ("cc", "Anna Schmidt &lt;anna.schmidt@example.org&gt;"),
                          ("subject", "Rechnung fehlt im Portal"), ("date", "Tue, 04 Mar 2025 11:02:19 +0100"),
                          ("message-id", "&lt;e2a9c0f1-3b4d-4e5f-8a9b-0c1d2e3f4a5b@example.org&gt;")]:
        assert re.search(rf'data-testid="header-{header}">{re.escape(value)}</dd>', page), header
    assert "die Rechnung für März fehlt im Portal" in page  # the text, decoded
    assert 'data-testid="mail-state-value">New</span>' in page
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert " sandbox " in frame and f'src="/agent/mail/{with_images.id}/html/"' in frame
    assert "allow-" not in frame  # nothing in the sandbox is allowed back
    parts = re.findall(r'<li data-testid="mail-part">(.*?)</li>', page, re.S)
    assert len(parts) == 3
    assert f'href="/agent/mail/{with_images.id}/part/0/"' in parts[0] and "logo.png" in parts[0]
    assert "Rechnung März 2025.pdf" in parts[1] and "href" not in parts[1]  # not an image: listed only
    assert f'href="/agent/mail/{with_images.id}/part/2/"' in parts[2]


def test_the_frame_is_its_own_sandboxed_document_with_cid_images_as_part_urls(agent_client, with_images):
    response = agent_client.get(f"/agent/mail/{with_images.id}/html/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == FRAME_CSP
    assert response["X-Frame-Options"] == "SAMEORIGIN"  # framed by our page only
    assert response["Content-Type"] == "text/html; charset=utf-8"
    body = response.content.decode()
    assert re.search(rf'<img src="/agent/mail/{with_images.id}/part/0/\?t=[\w:.-]+" alt="Logo"', body), body
    assert "cid:" not in body
    assert "die Rechnung für März fehlt im Portal" in body


def frame_image_url(client, message) -> str:
    body = client.get(f"/agent/mail/{message.id}/html/").content.decode()
    return re.search(r'<img src="([^"]+)"', body).group(1)


def test_the_frames_image_links_work_without_a_session_for_that_part_only(agent_client, with_images,
                                                                           monkeypatch):
    """The sandboxed frame has an opaque origin: its image requests carry no session cookie, only the signed
    token of its link."""
    from django.test import Client

    from email_channel import views

    url = frame_image_url(agent_client, with_images)
    stranger = Client()  # no session at all
    image = stranger.get(url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    token = url.split("?t=")[1]
    # The token names one part of one mail: not the PDF, not another part, not another mail.
    for other in (f"/agent/mail/{with_images.id}/part/1/?t={token}", f"/agent/mail/{with_images.id}/part/2/?t={token}",
                  f"/agent/mail/{with_images.id + 1}/part/0/?t={token}",
                  f"/agent/mail/{with_images.id}/part/0/?t={token[:-2]}xx"):
        refused = stranger.get(other)
        assert refused.status_code == 302 and refused["Location"].startswith("/login/"), other
    monkeypatch.setattr(views, "PART_LINK_MAX_AGE", -1)  # the link has expired
    assert stranger.get(url).status_code == 302


def test_only_image_parts_are_served_and_as_what_their_bytes_are(agent_client, with_images):
    from email_channel.parsing import mail_parse

    parts = mail_parse(bytes(with_images.raw)).parts
    logo = agent_client.get(f"/agent/mail/{with_images.id}/part/0/")
    assert logo.status_code == 200 and logo["Content-Type"] == "image/png"
    assert logo.content == parts[0].payload and logo.content.startswith(b"\x89PNG")
    assert logo["X-Content-Type-Options"] == "nosniff"
    assert agent_client.get(f"/agent/mail/{with_images.id}/part/1/").status_code == 404  # the PDF
    assert agent_client.get(f"/agent/mail/{with_images.id}/part/3/").status_code == 404  # no such part
    assert agent_client.get("/agent/mail/999999/").status_code == 404


def test_a_part_that_says_it_is_an_image_but_is_html_is_not_served(agent_client, db):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "eve@example.net", "helpdesk@example.com", "Look"
    message.set_content("See the picture.")
    message.add_attachment(b"<html><script>alert(1)</script></html>", maintype="image", subtype="png",
                           filename="cute.png")
    message.add_attachment(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                           maintype="image", subtype="svg+xml", filename="vector.svg")
    row = store(message.as_bytes())
    page = agent_client.get(f"/agent/mail/{row.id}/").content.decode()
    assert "cute.png" in page and "vector.svg" in page
    assert f"/agent/mail/{row.id}/part/" not in page
    assert agent_client.get(f"/agent/mail/{row.id}/part/0/").status_code == 404
    assert agent_client.get(f"/agent/mail/{row.id}/part/1/").status_code == 404
    # A plain-text mail has no frame and no HTML document.
    assert "<iframe" not in page
    assert agent_client.get(f"/agent/mail/{row.id}/html/").status_code == 404


def test_the_ticket_it_created_is_linked(agent_client, with_images, incident_factory):
    incident = incident_factory(title="Rechnung fehlt im Portal")
    InboundMessage.objects.filter(pk=with_images.pk).update(
        state=InboundMessage.State.PROCESSED, action="created", ticket_kind="incident", ticket_id=incident.id,
        ticket_number=incident.number)
    page = agent_client.get(f"/agent/mail/{with_images.id}/").content.decode()
    assert re.search(rf'<a href="/agent/incidents/{incident.number}/" data-testid="mail-ticket"><span class="mono">'
                     rf'{incident.number}</span></a>', page), page[page.find("mail-state"):][:1500]
    assert 'data-testid="mail-state-value">Processed</span>' in page


def test_an_ignored_mail_says_why(agent_client, db):
    row = store((SAMPLES / "out_of_office.eml").read_bytes(), state=InboundMessage.State.IGNORED,
                reason="auto-reply")
    page = agent_client.get(f"/agent/mail/{row.id}/").content.decode()
    assert 'data-testid="mail-reason">auto-reply</small>' in page
    assert 'data-testid="mail-state-value">Ignored</span>' in page


def test_requesters_and_strangers_never_see_a_mail(client, requester, with_images):
    for suffix in ("", "html/", "part/0/"):
        url = f"/agent/mail/{with_images.id}/{suffix}"
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    client.force_login(requester)
    for suffix in ("", "html/", "part/0/"):
        response = client.get(f"/agent/mail/{with_images.id}/{suffix}")
        assert response.status_code == 403  # as every /agent/ URL answers a requester
        assert b"Rechnung" not in response.content and b"PNG" not in response.content
