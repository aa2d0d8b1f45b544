import pytest

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_describes_the_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Servicedesk API"
    for path in ("/api/v1/auth/token/", "/api/v1/incidents/", "/api/v1/incidents/{number}/",
                 "/api/v1/incidents/{number}/comments/"):
        assert path in schema["paths"], path


def test_the_docs_page_is_served_from_local_static_files(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_the_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/v1/incidents/{number}/resolve/" in text
    assert "/api/v1/attachments/{attachment_id}/download/" in text
