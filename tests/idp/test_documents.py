"""Discovery, JWKS and the signing key: computed once per process, the same as the toolkit's."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.test import RequestFactory
from django.urls import reverse
from jwcrypto import jwk
from oauth2_provider.views import ConnectDiscoveryInfoView, JwksInfoView

from provider import signing
from provider.discovery import DiscoveryView
from tests.idp.flows import world_make

pytestmark = pytest.mark.django_db


def test_the_jwks_document_is_the_toolkits(client):
    ours = client.get(reverse("oauth2_provider:jwks-info"))
    theirs = JwksInfoView.as_view()(RequestFactory().get("/o/.well-known/jwks.json"))
    assert json.loads(ours.content) == json.loads(theirs.content)
    for header in ("Access-Control-Allow-Origin", "Cache-Control", "Content-Type"):
        assert ours[header] == theirs[header]


def test_the_discovery_document_is_the_toolkits_completed(client):
    ours = client.get(reverse("oidc-discovery")).json()
    request = RequestFactory().get("/o/.well-known/openid-configuration")
    theirs = json.loads(ConnectDiscoveryInfoView.as_view()(request).content)
    additions = DiscoveryView().additions(request)
    assert ours == {**theirs, **additions, "claims_supported": ours["claims_supported"]}
    assert sorted(ours["claims_supported"]) == sorted(theirs["claims_supported"])
    assert ours["end_session_endpoint"].endswith("/o/logout/")


def test_the_discovery_document_follows_a_settings_change(client, settings):
    client.get(reverse("oidc-discovery"))
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": "https://other.example.com/o"}
    assert client.get(reverse("oidc-discovery")).json()["issuer"] == "https://other.example.com/o"


def test_the_signing_key_is_parsed_once_per_process(client):
    world = world_make(client)
    world.sign_in()
    world.tokens()  # warm: the key is parsed by now
    with mock.patch.object(jwk.JWK, "from_pem", side_effect=AssertionError("parsed again")):
        tokens = world.tokens()
        assert world.refresh(tokens["refresh_token"]).status_code == 200
        assert client.get(reverse("oauth2_provider:jwks-info")).status_code == 200
    assert signing.signing_key() is signing.signing_key()
    assert world.application.jwk_key.thumbprint() == signing.key_id(signing.signing_pem())
