"""An attachment's type is judged from its bytes; an oversized request is refused (413) before it is read."""

import socket
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from servicedesk.models import Attachment, TimelineEntry

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


# The start of a Windows executable: "MZ", the DOS stub header, then the usual message.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run in DOS mode."
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def upload(api, number, name, content, content_type):
    return api.post(
        f"/api/v1/incidents/{number}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        format="multipart",
    )


@pytest.fixture
def api_and_incident(client_for, requester, incident_factory):
    return client_for(requester), incident_factory()


def test_it_refuses_an_executable_named_and_declared_as_a_png(api_and_incident):
    api, incident = api_and_incident
    response = upload(api, incident.number, "holiday.png", EXE, "image/png")
    assert response.status_code == 400
    assert response.json()["file"][0].startswith("file: 'holiday.png' is of type application/x-msdownload, "
                                                  "which is not accepted")
    assert Attachment.objects.count() == 0


@pytest.mark.parametrize("name,content,declared,stored", [
    ("screenshot.txt", png_bytes(), "text/plain", "image/png"),      # the bytes win over the name
    ("invoice", PDF, "application/octet-stream", "application/pdf"),
    ("notes.txt", "Grüße, the printer says E-42\n".encode(), "application/pdf", "text/plain"),
    ("export.csv", b"id,name\n1,VPN\n", "application/vnd.ms-excel", "text/csv"),
    ("payload.json", b'{"error": "timeout"}', "text/plain", "application/json"),
])
def test_it_stores_the_type_it_sniffed_not_the_declared_one(api_and_incident, name, content, declared, stored):
    api, incident = api_and_incident
    response = upload(api, incident.number, name, content, declared)
    assert response.status_code == 201, response.json()
    assert response.json()["mime_type"] == stored
    assert Attachment.objects.get().mime_type == stored


@pytest.mark.parametrize("name,content", [
    ("log.txt", b"line one\x00\x01\x02 binary after all"),         # a NUL byte: not text
    ("latin1.txt", "café crème".encode("latin-1")),               # text, but not UTF-8
    ("blob.bin", bytes(range(256)) * 4),
])
def test_it_refuses_content_that_is_neither_a_known_format_nor_utf8_text(api_and_incident, name, content):
    api, incident = api_and_incident
    response = upload(api, incident.number, name, content, "text/plain")
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(f"file: {name!r} is of no type we recognise")
    assert Attachment.objects.count() == 0


def test_the_portal_reply_judges_the_content_too(client, requester, incident_factory):
    incident = incident_factory()
    client.force_login(requester)
    client.post(f"/portal/incidents/{incident.number}/comment/",
                {"body": "Here is the screenshot", "attachment": SimpleUploadedFile("shot.png", EXE, "image/png")})
    assert Attachment.objects.count() == 0
    assert not TimelineEntry.objects.filter(body="Here is the screenshot").exists()  # nothing half-written


def test_an_oversized_request_gets_413_with_the_limit_and_nothing_is_stored(api_and_incident, settings):
    settings.ATTACHMENT_MAX_BYTES = 4096
    settings.REQUEST_BODY_MARGIN_BYTES = 1024
    api, incident = api_and_incident
    response = upload(api, incident.number, "big.pdf", PDF + b"x" * 6000, "application/pdf")
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The request is ")
    assert "larger than the limit of 5.0\xa0KB: attachments may be up to 4.0\xa0KB each" in response.json()["detail"]
    assert Attachment.objects.count() == 0


def test_an_oversized_form_gets_a_plain_413_message(client, requester, settings):
    settings.ATTACHMENT_MAX_BYTES = 4096
    settings.REQUEST_BODY_MARGIN_BYTES = 1024
    client.force_login(requester)
    response = client.post("/portal/report/", {"title": "Big", "urgency": 3,
                                               "attachment": SimpleUploadedFile("a.pdf", PDF + b"x" * 8000)})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert "attachments may be up to 4.0\xa0KB each. Nothing was saved." in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_413_comes_before_the_body_is_sent(live_server):
    """Only the headers are sent, announcing 200 MB: the answer must come without the server reading a byte
    of body (were it to read, it would wait for bytes that never come and the socket would time out)."""
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /api/v1/incidents/INC0000001/attachments/ HTTP/1.1\r\n"
                     b"Host: " + host.encode() + b"\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     b"Content-Length: 209715200\r\n\r\n")
        reply = b""
        while b"Nothing was saved." not in reply:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "larger than the limit of 11.0\xa0MB" in reply
