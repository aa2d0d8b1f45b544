import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_issues_a_token_for_the_right_password_and_accepts_it(api_client, requester):
    response = api_client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert len(token) == 64
    assert response.json()["expiry"]
    me = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["role"] == "requester"


def test_it_names_the_password_when_the_login_is_wrong(api_client, requester):
    response = api_client.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["password"] == ["Unknown username or wrong password."]


def test_it_names_missing_fields(api_client):
    response = api_client.post("/api/v1/auth/token/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_it_answers_401_without_credentials_and_with_a_bad_token(api_client):
    assert api_client.get("/api/v1/incidents/").status_code == 401
    response = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION="Token deadbeef")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_session_auth_works_for_the_browser(client, requester):
    assert client.login(username="alice", password=PASSWORD)
    assert client.get("/api/v1/me/").json()["username"] == "alice"


def test_agent_only_lists_are_refused_to_requesters(client_for, requester):
    api = client_for(requester)
    for url in ("/api/v1/users/", "/api/v1/organisations/", "/api/v1/configuration-items/"):
        assert api.get(url).status_code == 403, url
    assert api.get("/api/v1/services/").status_code == 200
