"""RP-initiated logout with `client_id` and `logout_hint` (the sid), for clients that keep no ID token."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from provider.models import LoginSession
from provider.services import application_register
from tests.idp.flows import CLIENT_ID, SIGNED_OUT_URI, World, claims_of, world_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    world = world_make(client)
    world.sign_in()
    return world


def end_session(client: Client, **params):
    return client.get(reverse("end-session"), {"post_logout_redirect_uri": SIGNED_OUT_URI, **params})


def signed_in(world) -> bool:
    return LoginSession.objects.filter(user=world.user, ended__isnull=True).exists()


def test_the_sid_of_this_browsers_session_signs_out_without_asking(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    response = end_session(world.client, client_id=CLIENT_ID, logout_hint=sid, state="st")
    assert response.status_code == 302
    assert response["Location"] == f"{SIGNED_OUT_URI}?state=st"
    assert not signed_in(world)
    assert "_auth_user_id" not in world.client.session


@pytest.mark.parametrize(
    "hint",
    [
        "another-sid-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "garbage",
        "x" * 5000,
        "nul\x00character",
        "é" * 43,
        " ",
    ],
)
def test_any_other_hint_asks_the_person(world, hint):
    world.tokens()
    response = end_session(world.client, client_id=CLIENT_ID, logout_hint=hint)
    assert response.status_code == 200, "the confirmation page"
    assert signed_in(world)


def test_the_sid_of_another_session_of_the_same_person_asks(world):
    other = World(client=Client(), user=world.user, application=world.application)
    other.sign_in()
    other_sid = claims_of(other.tokens()["id_token"])["sid"]
    world.tokens()
    response = end_session(world.client, client_id=CLIENT_ID, logout_hint=other_sid)
    assert response.status_code == 200
    assert LoginSession.objects.filter(user=world.user, ended__isnull=True).count() == 2


def test_the_hint_needs_the_client_it_was_issued_to(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    application_register(
        name="B", client_id="site-b", client_secret="b-secret-b-secret", redirect_uris=["http://127.0.0.1:8002/cb/"]
    )
    # site-b got no tokens in this session: it cannot have learnt the sid from us.
    response = world.client.get(reverse("end-session"), {"client_id": "site-b", "logout_hint": sid})
    assert response.status_code == 200
    assert signed_in(world)


def test_without_a_client_id_the_hint_is_no_hint(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    response = world.client.get(reverse("end-session"), {"logout_hint": sid})
    assert response.status_code == 200
    assert signed_in(world)


def test_an_unknown_client_id_is_a_400_page(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    response = end_session(world.client, client_id="no-such-client", logout_hint=sid)
    assert response.status_code == 400
    assert signed_in(world)


def test_a_hint_for_a_session_already_ended_asks_nobody(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    world.client.post(reverse("logout"))
    response = end_session(world.client, client_id=CLIENT_ID, logout_hint=sid)
    assert response.status_code == 302, "nobody is signed in here: nothing to ask"
    assert response["Location"] == SIGNED_OUT_URI


def test_the_id_token_hint_still_wins(world):
    tokens = world.tokens()
    response = end_session(
        world.client, client_id=CLIENT_ID, id_token_hint=tokens["id_token"], logout_hint="whatever-it-says"
    )
    assert response.status_code == 302 and response["Location"] == SIGNED_OUT_URI
    assert not signed_in(world)


def test_a_hint_sent_by_post_works_too(world):
    sid = claims_of(world.tokens()["id_token"])["sid"]
    response = world.client.post(
        reverse("end-session"),
        {"client_id": CLIENT_ID, "logout_hint": sid, "post_logout_redirect_uri": SIGNED_OUT_URI},
    )
    assert response.status_code == 302 and response["Location"] == SIGNED_OUT_URI
    assert not signed_in(world)
