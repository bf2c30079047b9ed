"""How many SQL queries each flow costs, exactly: a change in a count fails here.

Every flow runs through Django's test client against the IdP's real views. Each test lists
what its queries are for, so that a new count tells what changed. The tests run inside a
transaction (pytest-django's `db`), so a transaction.atomic() of the code shows as SAVEPOINT and
RELEASE SAVEPOINT: in production it is BEGIN and COMMIT, round trips too, and counted alike.
The same counts hold on SQLite and PostgreSQL. Every query here is by a unique key or an
indexed column: none grows with the number of tokens, codes or sessions in the database.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.idp.flows import SIGNED_OUT_URI, claims_of, world_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    return world_make(client)


@pytest.fixture
def signed_in(world):
    world.sign_in()
    return world


def test_discovery_and_jwks_cost_no_query(world, django_assert_num_queries):
    world.client.get(reverse("oidc-discovery"))  # built on the first request of the process
    with django_assert_num_queries(0):
        assert world.client.get(reverse("oidc-discovery")).status_code == 200
    with django_assert_num_queries(0):
        assert world.client.get(reverse("oauth2_provider:jwks-info")).json()["keys"]


def test_password_sign_in(world, django_assert_num_queries):
    world.client.get(reverse("login"))
    # 1 the person, by username (ModelBackend)
    # 2 whether they have an authenticator app (django-otp: two-factor sign-in or not)
    # 3 UPDATE last_login (Django's user_logged_in)
    # 4 INSERT the login session (provider.login_sessions)
    with django_assert_num_queries(4):
        response = world.client.post(reverse("login"), {"username": "alice", "password": "alice-unit-test-password"})
    assert response.status_code == 302


def test_authorize_a_signed_in_person_at_a_trusted_client(signed_in, django_assert_num_queries):
    params, _ = signed_in.authorize_params()
    # 1 the signed-in person (django.contrib.auth, from the session)
    # 2 the client, by client_id (oauthlib's validation; handed on to the code's creation)
    # 3 this browser's login session, by sid (signed in still? auth_time for max_age)
    # 4 the client again: the toolkit's AuthorizationView.get reads it itself
    # 5 INSERT the code (Grant)
    # 6 INSERT its GrantSession row (its login session; later its use)
    with django_assert_num_queries(6):
        code = signed_in.authorize(params)
    assert code


def test_code_exchange(signed_in, django_assert_num_queries):
    params, verifier = signed_in.authorize_params()
    code = signed_in.authorize(params)
    # 1 the code, with its person, their account, its GrantSession row (used before?) and login
    #   session (sid, auth_time, amr), all in one (oauthlib asks about the code 8 times)
    # 2 the client, by client_id, to check its secret
    # 3 INSERT the ID token's row
    # 4 SAVEPOINT (the toolkit's transaction around saving the tokens)
    # 5 INSERT the access token
    # 6 INSERT the refresh token
    # 7 INSERT its RefreshTokenSession link (signing out revokes it)
    # 8 INSERT ... ON CONFLICT DO NOTHING the client into the login session's clients (back-channel)
    # 9 RELEASE SAVEPOINT
    # 10 UPDATE the code's GrantSession row: used, by these tokens (WHERE used IS NULL: once only)
    with django_assert_num_queries(10):
        response = signed_in.exchange(code, verifier)
    assert response.status_code == 200, response.content
    assert claims_of(response.json()["id_token"])["sid"]


def test_refresh_with_rotation(signed_in, django_assert_num_queries):
    tokens = signed_in.tokens()
    # 1 the client, by client_id, to check its secret
    # 2 the refresh token, with its access token, person, account and login session
    # 3 INSERT the new ID token's row
    # 4 SAVEPOINT (the toolkit's transaction around saving the tokens)
    # 5 UPDATE the old refresh token: revoked (WHERE revoked IS NULL: one rotation only)
    # 6 DELETE the old access token
    # 7 INSERT the new access token
    # 8 INSERT the new refresh token
    # 9 INSERT its RefreshTokenSession link
    # 10 RELEASE SAVEPOINT
    with django_assert_num_queries(10):
        response = signed_in.refresh(tokens["refresh_token"])
    assert response.status_code == 200, response.content
    assert response.json()["refresh_token"] != tokens["refresh_token"]


def test_userinfo(signed_in, django_assert_num_queries):
    tokens = signed_in.tokens()
    # 1 the access token, with its client, person and account
    with django_assert_num_queries(1):
        response = signed_in.userinfo(tokens["access_token"])
    assert response.status_code == 200 and response.json()["email"] == "alice@example.com"


def test_introspection_of_the_clients_own_token(signed_in, django_assert_num_queries):
    tokens = signed_in.tokens()
    # 1 the calling client, by client_id, to check its secret
    # 2 the token, with its client and person
    with django_assert_num_queries(2):
        response = signed_in.introspect(tokens["access_token"])
    assert response.json()["active"] is True


def test_end_session_with_an_id_token_hint(signed_in, django_assert_num_queries):
    tokens = signed_in.tokens()
    signed_in.authorize(signed_in.authorize_params()[0])  # a code not exchanged: deleted at sign-out
    query = {"id_token_hint": tokens["id_token"], "client_id": "site-a", "post_logout_redirect_uri": SIGNED_OUT_URI}
    with django_assert_num_queries(END_SESSION_QUERIES + 2):
        # + 1 the hint's person, by sub (with the user)
        # + 2 the hint's client (read once, though the toolkit's view asks for it twice)
        response = signed_in.client.get(reverse("end-session"), query)
    assert response.status_code == 302 and response["Location"] == SIGNED_OUT_URI


def test_end_session_with_a_logout_hint(signed_in, django_assert_num_queries):
    tokens = signed_in.tokens()
    signed_in.authorize(signed_in.authorize_params()[0])
    query = {
        "logout_hint": claims_of(tokens["id_token"])["sid"],
        "client_id": "site-a",
        "post_logout_redirect_uri": SIGNED_OUT_URI,
    }
    with django_assert_num_queries(END_SESSION_QUERIES + 2):
        # + 1 the client
        # + 2 whether it got tokens in this login session (only then may it know the sid)
        response = signed_in.client.get(reverse("end-session"), query)
    assert response.status_code == 302 and response["Location"] == SIGNED_OUT_URI


#: What every sign-out of a person with one client and an unexchanged code costs:
#: 1 the signed-in person (django.contrib.auth)
#: 2 the login session, by sid
#: 3 SAVEPOINT (ending a login session is one transaction)
#: 4 UPDATE the login session: ended (WHERE ended IS NULL: once only)
#: 5-7 the codes not exchanged yet: SELECT them, DELETE their GrantSession rows, DELETE them
#: 8 UPDATE its refresh tokens: revoked (all at once)
#: 9-11 their access tokens: SELECT them, clear the refresh tokens' pointers, DELETE them
#: 12 which of its clients to tell (back-channel logout URI set)
#: 13 RELEASE SAVEPOINT
END_SESSION_QUERIES = 13
