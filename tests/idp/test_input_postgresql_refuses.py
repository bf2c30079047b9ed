"""Input SQLite took and PostgreSQL refuses: a clear 4xx answer, never a database error (a 500).

SQLite stores and compares NUL characters and ignores column lengths; PostgreSQL does neither:
a `client_id=%00` looked up, or a nonce longer than the grant's column stored, ended in a 500.
These tests run on PostgreSQL whenever there is one (see conftest.py).
"""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_application_model, get_grant_model

FORM = "application/x-www-form-urlencoded"
NONCE_MAX_LENGTH = get_grant_model()._meta.get_field("nonce").max_length
SECRET = "a-client-secret-for-these-tests"


def basic(client_id: str, secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.django_db
def test_a_nul_character_in_the_client_id_is_an_unknown_client(client):
    assert client.get("/o/authorize/?client_id=%00&response_type=code").status_code == 400  # a page, no redirect
    assert client.get("/o/logout/?client_id=%00").status_code == 400
    token = client.post("/o/token/", data="grant_type=authorization_code&code=x", content_type=FORM, **basic("%00"))
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "grant_type=authorization_code&code=%ff%00&code_verifier=" + "v" * 43,
        "grant_type=refresh_token&refresh_token=a%00b",
        "grant_type=authorization_code&code=x&client_id=%00",
        "grant_type=authorization_code&code=x&code_verifier=%00",
    ],
)
def test_a_nul_character_in_a_token_request_is_an_invalid_request(client, body):
    app = application(trusted=True)
    response = client.post(
        "/o/token/", data=f"{body}&redirect_uri={REDIRECT_URI}", content_type=FORM, **basic(app.client_id)
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.django_db
def test_a_nul_character_elsewhere_is_no_server_error(client):
    assert client.post("/accounts/login/", data="username=%00&password=x", content_type=FORM).status_code < 500
    assert client.get("/?%00=x").status_code < 500


REDIRECT_URI = "http://127.0.0.1:8001/sso/callback/"


@pytest.fixture
def signed_in(client):
    get_user_model().objects.create_user("dora", password="a long password for dora")
    response = client.post("/accounts/login/", {"username": "dora", "password": "a long password for dora"})
    assert response.status_code == 302
    return client


def application(*, trusted: bool):
    return get_application_model().objects.create(
        name="app",
        client_id=f"app-{secrets.token_hex(4)}",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
        algorithm="RS256",
        skip_authorization=trusted,
        client_secret=SECRET,
    )


def authorization_params(app, nonce: str) -> dict[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "st",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def client_error(response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(REDIRECT_URI)
    return parse_qs(urlsplit(response["Location"]).query)


@pytest.mark.django_db
def test_a_nonce_longer_than_the_grant_keeps_is_an_error_for_the_client(signed_in):
    app = application(trusted=True)
    answer = client_error(signed_in.get("/o/authorize/", authorization_params(app, "n" * (NONCE_MAX_LENGTH + 1))))
    assert answer["error"] == ["invalid_request"] and answer["state"] == ["st"]
    fits = client_error(signed_in.get("/o/authorize/", authorization_params(app, "n" * NONCE_MAX_LENGTH)))
    assert "code" in fits


@pytest.mark.django_db
def test_a_nul_character_in_the_nonce_is_an_error_for_the_client(signed_in):
    app = application(trusted=True)
    answer = client_error(signed_in.get("/o/authorize/", authorization_params(app, "a\x00b")))
    assert answer["error"] == ["invalid_request"]


@pytest.mark.django_db
def test_a_nonce_made_too_long_in_the_consent_form_is_an_error_for_the_client(signed_in):
    app = application(trusted=False)
    params = authorization_params(app, "n")
    assert signed_in.get("/o/authorize/", params).status_code == 200  # the consent page
    tampered = {**params, "nonce": "n" * (NONCE_MAX_LENGTH + 1), "allow": "Authorize"}
    answer = client_error(signed_in.post("/o/authorize/", tampered))
    assert answer["error"] == ["invalid_request"]
