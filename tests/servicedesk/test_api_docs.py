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


def test_it_tags_every_operation_with_its_resource_so_the_docs_group_them(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    tags = {
        (method.upper(), path): operation.get("tags")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    expected = {
        ("POST", "/api/v1/auth/token/"): ["auth"],
        ("GET", "/api/v1/me/"): ["me"],
        ("GET", "/api/v1/incidents/"): ["incidents"],
        ("POST", "/api/v1/incidents/{number}/resolve/"): ["incidents"],
        ("POST", "/api/v1/incidents/{number}/comments/"): ["incidents"],
        ("GET", "/api/v1/users/"): ["users"],
        ("GET", "/api/v1/teams/{id}/"): ["teams"],
        ("GET", "/api/v1/services/"): ["services"],
        ("GET", "/api/v1/configuration-items/"): ["configuration-items"],
        ("GET", "/api/v1/organisations/"): ["organisations"],
        ("GET", "/api/v1/attachments/{attachment_id}/download/"): ["attachments"],
    }
    assert {key: tags[key] for key in expected} == expected
    # One group per resource: no operation is left in a catch-all "v1" group or untagged.
    assert all(value and len(value) == 1 and value[0] != "v1" for value in tags.values()), tags
    declared = [tag["name"] for tag in schema["tags"]]
    assert declared[:3] == ["auth", "me", "incidents"]
    assert all(tag.get("description") for tag in schema["tags"])


def test_there_is_no_redoc_page_that_would_load_fonts_and_a_logo_from_the_internet(client):
    # Redoc's bundle always fetches its attribution logo from the vendor's CDN; Swagger UI at /api/docs/
    # is served entirely from local static files (tests/e2e/test_offline.py watches its requests).
    assert client.get("/api/redoc/").status_code == 404
