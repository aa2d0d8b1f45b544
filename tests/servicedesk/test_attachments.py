import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from servicedesk.models import Attachment, TimelineEntry

pytestmark = pytest.mark.django_db


def upload(api, number, name, content, content_type):
    return api.post(
        f"/api/v1/incidents/{number}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        format="multipart",
    )


def test_it_stores_an_allowed_file_and_lists_it(client_for, requester, incident_factory):
    incident = incident_factory()
    api = client_for(requester)
    response = upload(api, incident.number, "screenshot.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")
    assert response.status_code == 201, response.json()
    assert response.json()["filename"] == "screenshot.png"
    assert response.json()["mime_type"] == "image/png"
    listed = api.get(f"/api/v1/incidents/{incident.number}/attachments/").json()
    assert [a["filename"] for a in listed] == ["screenshot.png"]
    download = api.get(listed[0]["url"])
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="screenshot.png"'
    assert b"".join(download.streaming_content).startswith(b"\x89PNG")


def test_it_rejects_a_file_over_the_limit_with_a_clear_message(client_for, requester, incident_factory, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    incident = incident_factory()
    entries_before = TimelineEntry.objects.count()
    response = upload(client_for(requester), incident.number, "big.pdf", b"%PDF" + b"x" * 2000, "application/pdf")
    assert response.status_code == 400
    assert response.json()["file"] == ["file: 'big.pdf' is 2.0\xa0KB, larger than the limit of 1.0\xa0KB"]
    assert Attachment.objects.count() == 0
    assert TimelineEntry.objects.count() == entries_before  # nothing half-written


def test_it_rejects_a_refused_type_naming_it(client_for, requester, incident_factory):
    incident = incident_factory()
    response = upload(client_for(requester), incident.number, "setup.exe", b"MZ" + b"0" * 50,
                      "application/octet-stream")
    assert response.status_code == 400
    message = response.json()["file"][0]
    assert message.startswith("file: 'setup.exe' is of type application/")
    assert "which is not accepted (accepted: application/json, application/pdf" in message
    assert Attachment.objects.count() == 0


def test_a_requester_cannot_attach_to_or_list_anothers_incident(client_for, other_requester, incident_factory):
    incident = incident_factory()
    api = client_for(other_requester)
    assert upload(api, incident.number, "a.txt", b"hello", "text/plain").status_code == 404
    assert api.get(f"/api/v1/incidents/{incident.number}/attachments/").status_code == 404
