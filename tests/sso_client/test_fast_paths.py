"""What a signed-in page view and a callback cost: calls to the IdP, database queries, session contents.

Every HTTP call the app makes goes through requests.Session.request (Authlib's OAuth2Session is
one, and so is requests.get): it is replaced here by a fake IdP that counts what it is asked.
The query counts are exact, so that a query added to these paths fails a test.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.urls import reverse

from sso_client import middleware
from sso_client.models import Identity
from sso_client.sign_in_states import BROWSER_SESSION_KEY
from sso_client.tokens import SESSION_TOKEN_KEY, forget_tokens, read_token
from tests.sso_client.conftest import METADATA, make_id_token
from tests.sso_client.test_callback import begin, token_response
from tests.sso_client.test_pending_sign_ins import pending_states

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


class FakeIdp:
    """Stands in for every HTTP call: answers the token endpoint, counts every call."""

    def __init__(self, token: dict) -> None:
        self.token = token
        self.calls: list[tuple[str, str]] = []

    def __call__(self, session, method, url, *args, **kwargs) -> requests.Response:
        self.calls.append((method.upper(), url))
        response = requests.Response()
        response.url = url
        if method.upper() == "POST" and url == METADATA["token_endpoint"]:
            response.status_code = 200
            response._content = json.dumps(self.token).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response.status_code = 404
            response._content = b"{}"
        return response


@pytest.fixture
def idp_http(monkeypatch):
    """Install a fake IdP for the token it is given; returns it, to read its calls."""

    def install(token: dict) -> FakeIdp:
        fake = FakeIdp(token)
        monkeypatch.setattr(requests.Session, "request", lambda session, *a, **kw: fake(session, *a, **kw))
        return fake

    return install


def sign_in(client, signing_key, idp_http, *, sub: str = "sub-1", sid: str | None = "sid-1") -> FakeIdp:
    request = begin(client)
    fake = idp_http(token_response(make_id_token(signing_key, nonce=request["nonce"], sub=sub, sid=sid)))
    response = client.get("/sso/callback/", {"code": "the-code", "state": request["state"]})
    assert response.status_code == 302 and response["Location"] == "/"
    return fake


def stored_session(client) -> dict:
    """The session as the cache keeps it (Django's cache engine reads it as it is stored)."""
    key = client.cookies["sessionid"].value
    return dict(SessionStore(session_key=key).load())


# --- the callback --------------------------------------------------------------------------------
def test_a_callback_makes_one_call_to_the_idp_the_token_request(client, signing_key, idp_http):
    fake = sign_in(client, signing_key, idp_http)
    # Discovery and JWKS come from the cache, the claims from the ID token: no userinfo call.
    assert fake.calls == [("POST", METADATA["token_endpoint"])]


def test_a_returning_persons_callback_makes_two_queries(client, signing_key, idp_http, django_assert_num_queries):
    sign_in(client, signing_key, idp_http)  # the first sign-in creates the user
    client.logout()
    request = begin(client)
    idp_http(token_response(make_id_token(signing_key, nonce=request["nonce"], sub="sub-1", sid="sid-2")))
    # 1. the identity (issuer, sub) with its user, in one query (select_related)
    # 2. django.contrib.auth's update of the user's last_login (login() sends user_logged_in)
    # (the profile claims have not changed, so the user is not saved)
    with django_assert_num_queries(2):
        response = client.get("/sso/callback/", {"code": "the-code", "state": request["state"]})
    assert response.status_code == 302


def test_a_signed_in_session_holds_only_what_later_requests_need(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http, sid="sid-1")
    session = stored_session(client)
    # Django's user and its session hash, and the token's expiry: no tokens (they have a key of
    # their own, with the IdP session's sid), no ID token, no pending sign-in, and not the auth
    # backend (the default one: put back when read).
    assert set(session) == {"_auth_user_id", "_auth_user_hash", SESSION_TOKEN_KEY}
    assert client.session["_auth_user_backend"] == "django.contrib.auth.backends.ModelBackend"
    expires_at = pytest.approx(time.time() + 300, abs=5)
    assert session[SESSION_TOKEN_KEY] == {"expires_at": expires_at}
    assert read_token(client.session.session_key) == {
        "access_token": "access",
        "refresh_token": "refresh",
        "expires_at": expires_at,
        "sid": "sid-1",
    }


def test_signing_in_again_replaces_the_whole_token_sid_included(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http, sid="sid-1")
    sign_in(client, signing_key, idp_http, sid=None)  # an IdP session without a sid this time
    assert "sid" not in read_token(client.session.session_key)


def test_another_person_signing_in_in_the_same_browser_leaves_nothing_of_the_first(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http, sub="sub-1", sid="sid-1")
    first_key = client.session.session_key
    sign_in(client, signing_key, idp_http, sub="sub-2", sid="sid-2")  # Django flushes the first session
    assert client.session.session_key != first_key
    assert read_token(first_key) is None, "the first person's tokens went with their session"
    assert read_token(client.session.session_key)["sid"] == "sid-2"


def test_other_tabs_pending_sign_ins_survive_a_sign_in_the_used_one_does_not(client, signing_key, idp_http):
    other_tab = begin(client)
    sign_in(client, signing_key, idp_http)
    assert pending_states(client) == [other_tab["state"]]
    assert set(stored_session(client)) == {"_auth_user_id", "_auth_user_hash", SESSION_TOKEN_KEY, BROWSER_SESSION_KEY}
    # The other tab's sign-in completes too; then the session binds no sign-in any more.
    fake = idp_http(token_response(make_id_token(signing_key, nonce=other_tab["nonce"], sub="sub-1", sid="sid-1")))
    response = client.get("/sso/callback/", {"code": "the-code", "state": other_tab["state"]})
    assert response.status_code == 302 and fake.calls == [("POST", METADATA["token_endpoint"])]
    assert set(stored_session(client)) == {"_auth_user_id", "_auth_user_hash", SESSION_TOKEN_KEY}


# --- a signed-in page view -----------------------------------------------------------------------
def test_a_signed_in_page_view_makes_no_call_and_no_query(client, signing_key, idp_http, django_assert_num_queries):
    sign_in(client, signing_key, idp_http)
    fake = idp_http({})
    with django_assert_num_queries(0):  # the session (in the cache) says who is signed in
        response = client.get("/no-user/")
    assert response.status_code == 200
    assert fake.calls == []


def test_a_page_that_uses_the_user_makes_its_own_query_only(client, signing_key, idp_http, django_assert_num_queries):
    sign_in(client, signing_key, idp_http)
    fake = idp_http({})
    # 1. the page's own: request.user, looked up by django.contrib.auth when the page uses it
    with django_assert_num_queries(1):
        response = client.get("/")
    assert response.content == b"hello alice"
    assert fake.calls == []


def test_the_public_paths_are_worked_out_once(client, signing_key, idp_http, monkeypatch):
    sign_in(client, signing_key, idp_http)
    middleware.public_prefixes.cache_clear()
    calls = []
    monkeypatch.setattr(middleware, "reverse", lambda *a, **kw: calls.append(a) or reverse(*a, **kw))
    for path in ("/no-user/", "/public/", "/no-user/"):
        assert client.get(path).status_code == 200
    assert len(calls) == 1


def test_a_change_of_public_paths_is_seen(client, settings):
    assert client.get("/no-user/").status_code == 401  # a script's request, not signed in
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "PUBLIC_PATHS": ["/no-user/"]}
    assert client.get("/no-user/").status_code == 200


# --- the session's user is gone -----------------------------------------------------------------
def test_a_page_view_of_a_user_deleted_here_signs_in_afresh(client, signing_key, idp_http):
    """The user is looked up only by pages that use it: a page that does, finds nobody, and the
    person is sent to sign in again (which creates their user anew) with the session ended."""
    sign_in(client, signing_key, idp_http)
    old_key = client.cookies["sessionid"].value
    get_user_model().objects.all().delete()

    # A page that does not use request.user is served: the session's token still says who signed in.
    assert client.get("/no-user/").status_code == 200
    response = client.get("/", headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302 and response["Location"].startswith(METADATA["authorization_endpoint"])
    assert not SessionStore().exists(old_key), "the session of the user that is gone has ended"
    assert SESSION_KEY not in client.session
    assert client.get("/no-user/").status_code == 401  # and no page is served on it any more


def test_a_user_deactivated_here_is_sent_to_sign_in(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http)
    get_user_model().objects.update(is_active=False)  # ModelBackend finds no inactive user
    response = client.get("/", headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302 and response["Location"].startswith(METADATA["authorization_endpoint"])
    assert SESSION_KEY not in client.session


def test_a_post_of_a_user_deleted_here_is_a_401(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http)
    get_user_model().objects.all().delete()
    response = client.post("/")
    assert response.status_code == 401


def test_a_post_of_a_user_deleted_here_never_reaches_the_view(client, signing_key, idp_http):
    """A form post can change things: it runs only for a user who exists, never as nobody."""
    from tests.sso_client.urls import POSTED_BY

    POSTED_BY.clear()
    sign_in(client, signing_key, idp_http)
    assert client.post("/post/").status_code == 200
    assert POSTED_BY == [Identity.objects.get().user.username]  # noqa: SIM300 - what the view saw
    get_user_model().objects.all().delete()
    assert client.post("/post/").status_code == 401
    assert len(POSTED_BY) == 1, "the view did not run for the user that is gone"
    assert SESSION_KEY not in client.session


def test_a_session_whose_auth_hash_no_longer_matches_signs_in_afresh(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http)
    user = Identity.objects.get(subject="sub-1").user
    user.set_password("changed elsewhere")  # the session's _auth_user_hash no longer matches
    user.save()
    response = client.get("/", headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302 and response["Location"].startswith(METADATA["authorization_endpoint"])
    assert SESSION_KEY not in client.session


def test_a_session_with_a_user_but_no_token_is_sent_to_sign_in(client, django_assert_num_queries):
    client.force_login(get_user_model().objects.create(username="bob"))  # signed in, not through the IdP
    with django_assert_num_queries(0):  # decided from the session: no user lookup
        response = client.get("/no-user/", headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302 and response["Location"].startswith(METADATA["authorization_endpoint"])


# --- signing out ---------------------------------------------------------------------------------
def end_session_request(client) -> dict[str, list[str]]:
    page = client.get("/sso/logout/")
    response = client.post("/sso/logout/", {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == METADATA["end_session_endpoint"]
    return parse_qs(location.query)


def test_signing_out_names_the_client_and_the_idp_session_not_an_id_token(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http, sid="sid-1")
    sent = end_session_request(client)
    assert sent["client_id"] == ["site-x"] and sent["logout_hint"] == ["sid-1"]
    assert sent["post_logout_redirect_uri"] == ["http://testserver/sso/signed-out/"]
    assert "id_token_hint" not in sent
    assert SESSION_KEY not in client.session


def test_signing_out_without_a_known_sid_sends_no_hint(client, signing_key, idp_http):
    sign_in(client, signing_key, idp_http, sid=None)
    sent = end_session_request(client)
    assert sent["client_id"] == ["site-x"] and "logout_hint" not in sent and "id_token_hint" not in sent


def test_signing_out_of_a_session_of_the_older_shape_takes_the_sid_from_its_id_token(client, signing_key, idp_http):
    request = begin(client)
    id_token = make_id_token(signing_key, nonce=request["nonce"], sid="sid-old")
    sign_in(client, signing_key, idp_http)
    session = client.session
    forget_tokens(session.session_key)
    # As the version before kept it: the tokens in the session, with the whole ID token and no sid.
    session[SESSION_TOKEN_KEY] = {"access_token": "a", "refresh_token": "r", "expires_at": time.time() + 300}
    session[SESSION_TOKEN_KEY]["id_token"] = id_token
    session.save()
    assert client.get("/no-user/").status_code == 200
    assert end_session_request(client)["logout_hint"] == ["sid-old"]


# --- what a page view reads ----------------------------------------------------------------------
@pytest.fixture
def cache_calls(monkeypatch):
    """Every call made to the cache (the site's Redis in production), by method name."""
    from django.core.cache.backends.locmem import LocMemCache

    calls: list[str] = []
    for name in ("get", "get_many", "has_key", "add", "set", "set_many", "delete", "delete_many", "touch"):
        method = getattr(LocMemCache, name)
        monkeypatch.setattr(
            LocMemCache,
            name,
            lambda self, *a, _name=name, _method=method, **kw: calls.append(_name) or _method(self, *a, **kw),
        )
    return calls


def test_a_signed_in_page_view_reads_the_cache_once(client, signing_key, idp_http, cache_calls):
    sign_in(client, signing_key, idp_http)
    cache_calls.clear()
    assert client.get("/no-user/").status_code == 200
    assert cache_calls == ["get"], "the session, and nothing more: the token is not due"


def test_a_hint_saved_back_stale_costs_a_lock_and_a_read_not_a_refresh(client, signing_key, idp_http, cache_calls):
    sign_in(client, signing_key, idp_http)
    session = client.session
    # As a page that read the session before a refresh and wrote it after leaves it: a hint that says due.
    session[SESSION_TOKEN_KEY] = {**session[SESSION_TOKEN_KEY], "expires_at": time.time() - 5}
    session.save()
    fake = idp_http({})
    cache_calls.clear()
    assert client.get("/no-user/").status_code == 200
    assert fake.calls == [], "the token key says the token is good: no refresh"
    # The session; the lock, the token, the lock released by its holder: on this in-memory cache
    # read then deleted, on Redis one compare-and-delete (sso_client.locks).
    assert cache_calls == ["get", "add", "get", "get", "delete"]
