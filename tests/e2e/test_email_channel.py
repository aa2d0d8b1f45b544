"""The original of an inbound mail in a real browser: an agent opens /agent/mail/<id>/ and sees its headers,
and its HTML in the sandboxed frame with the inline (cid:) image drawn from the image-only part URL, with
nothing on the console and no CSP violation."""

import re
import struct
import zlib
from email.message import EmailMessage
from email.utils import formatdate

import pytest
from playwright.sync_api import expect

from .conftest import login, provision_user, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (the stdlib's zlib, no imaging library)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def html_mail() -> bytes:
    """What a mail client sends for an HTML mail with a pasted picture: multipart/alternative with the HTML in
    a multipart/related beside its inline image."""
    message = EmailMessage()
    message["From"] = "Carla Caller <carla@example.com>"
    message["To"] = "helpdesk@example.com"
    message["Subject"] = "Error dialog when saving"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = "<error-dialog-1@example.com>"
    message.set_content("Hello,\n\nthis dialog appears every time I save.\n\nCarla\n")
    message.add_alternative(
        "<html><body><p>Hello,</p><p>this <b>dialog</b> appears every time I save:</p>"
        '<p><img src="cid:shot1@example.com" alt="The error dialog" width="240" height="80"></p>'
        "<script>document.title='pwned'</script><p>Carla</p></body></html>", subtype="html")
    message.get_payload()[1].add_related(png(240, 80, (200, 16, 46)), maintype="image", subtype="png",
                                         cid="<shot1@example.com>", filename="dialog.png")
    return message.as_bytes()


def test_an_agent_reads_the_original_mail_with_its_inline_image(page, live_server):
    from email_channel.models import InboundMessage, Mailbox

    provision_user("agnes", "agent", name="Agnes Agent")
    mailbox = Mailbox.objects.create(name="Helpdesk", address="helpdesk@example.com", host="imap.example.com")
    raw = html_mail()
    mail = InboundMessage.objects.create(mailbox=mailbox, source=InboundMessage.Source.IMAP, uidvalidity=1, uid=1,
                                         raw=raw, size=len(raw), subject="Error dialog when saving",
                                         from_address="carla@example.com")
    images = []
    page.on("response", lambda r: images.append((r.url, r.status, r.headers.get("content-type")))
            if "/part/" in r.url else None)

    login(page, live_server, "agnes")
    page.goto(f"{live_server.url}/agent/mail/{mail.id}/")
    expect(page.get_by_test_id("mail-subject")).to_have_text("Error dialog when saving")
    expect(page.get_by_test_id("header-from")).to_have_text("Carla Caller <carla@example.com>")
    expect(page.get_by_test_id("header-message-id")).to_have_text("<error-dialog-1@example.com>")
    expect(page.get_by_test_id("mail-text")).to_contain_text("this dialog appears every time I save.")
    expect(page.get_by_test_id("mail-part")).to_have_count(1)

    frame_element = page.get_by_test_id("mail-frame")
    assert frame_element.get_attribute("sandbox") == ""
    frame = page.frame_locator("[data-testid=mail-frame]")
    expect(frame.locator("b")).to_have_text("dialog")
    image = frame.locator("img")
    expect(image).to_have_attribute("src", re.compile(rf"^/agent/mail/{mail.id}/part/0/\?t=[\w:.-]+$"))
    # Drawn: the browser fetched the part from the sandbox (img-src 'self'; the sandbox's opaque origin sends no
    # session cookie, the link's signed token lets it through) and decoded it.
    expect(image).to_be_visible()
    box = image.bounding_box()
    assert box and round(box["width"]) == 240 and round(box["height"]) == 80
    assert [(url.split("?")[0], status, kind) for url, status, kind in images] == [
        (f"{live_server.url}/agent/mail/{mail.id}/part/0/", 200, "image/png")], images
    natural = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert natural == [True, 240, 80]
    assert page.title() != "pwned"
    screenshot(page, "email-original-mail")
