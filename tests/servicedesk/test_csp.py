"""The Content-Security-Policy is sent on every page and nothing in the templates needs it loosened."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/login/", "/portal/", "/portal/report/", "/agent/", "/api/docs/", "/admin/"])
def test_every_page_gets_a_self_only_policy_without_inline_script(client, make_user, url):
    if url != "/login/":
        client.force_login(make_user("admin"))
    response = client.get(url)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]


def test_the_swagger_start_up_script_is_a_file_of_its_own(client):
    page = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in page
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"] == "application/javascript" and b"SwaggerUIBundle" in script.content


def html_templates():
    return [p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".svg") and "email" not in p.parts]


@pytest.mark.parametrize("path", html_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_style_or_event_handlers(path):
    # What the browser gets: Django comments (which may mention <script>) are not sent.
    text = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", "", path.read_text(), flags=re.S)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert "<style" not in text, "inline <style>"
    assert not re.search(r"\sstyle=", text), "style attribute"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"
    assert not re.search(r"\shx-on[:-]", text), "hx-on (needs eval)"
