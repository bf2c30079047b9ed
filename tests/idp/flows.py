"""The OpenID Connect flows, driven through Django's test client against the IdP's real views."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from provider.selectors import account_for
from provider.services import application_register

CLIENT_ID = "site-a"
CLIENT_SECRET = "site-a-secret-of-the-unit-tests"
REDIRECT_URI = "http://127.0.0.1:8001/sso/callback/"
SIGNED_OUT_URI = "http://127.0.0.1:8001/sso/signed-out/"
PASSWORD = "alice-unit-test-password"


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def claims_of(jwt: str) -> dict:
    """A JWT's payload, unverified (the tests read what the IdP signed)."""
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "==="))


@dataclass
class World:
    client: Client
    user: object
    application: object

    def sign_in(self) -> None:
        self.client.get(reverse("login"))
        response = self.client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
        assert response.status_code == 302, response

    def authorize_params(self) -> tuple[dict, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email",
            "state": "the-state",
            "nonce": "the-nonce",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return params, verifier

    def authorize(self, params: dict) -> str:
        response = self.client.get(reverse("authorize"), params)
        assert response.status_code == 302, response
        return parse_qs(urlsplit(response["Location"]).query)["code"][0]

    def exchange(self, code: str, verifier: str):
        return self.client.post(
            reverse("token"),
            {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
            HTTP_AUTHORIZATION=basic(),
        )

    def refresh(self, refresh_token: str):
        return self.client.post(
            reverse("token"),
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            HTTP_AUTHORIZATION=basic(),
        )

    def userinfo(self, access_token: str):
        return self.client.get(reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {access_token}")

    def introspect(self, token: str):
        return self.client.post(reverse("introspect"), {"token": token}, HTTP_AUTHORIZATION=basic())

    def tokens(self) -> dict:
        """Signed in, authorized, code exchanged: the token response."""
        params, verifier = self.authorize_params()
        response = self.exchange(self.authorize(params), verifier)
        assert response.status_code == 200, response.content
        return response.json()


def world_make(client: Client) -> World:
    user = get_user_model().objects.create_user("alice", password=PASSWORD, email="alice@example.com")
    account_for(user)  # created at the person's first sign-in in real life
    registered = application_register(
        name="Site A",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[SIGNED_OUT_URI],
        trusted=True,
    )
    return World(client=client, user=user, application=registered.application)
