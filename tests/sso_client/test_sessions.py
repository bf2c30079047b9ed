"""A session ended by a logout stays ended, even if a request that was running saves it."""

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cache import SessionStore as PlainCacheSessionStore
from django.core.cache import cache

from sso_client.session_index import end_sessions, index_session
from sso_client.sessions import SessionStore
from sso_client.tokens import read_token, store_token


def signed_in_session(**data) -> SessionStore:
    session = SessionStore()
    session.update({"_auth_user_id": "1", **data})
    session.create()
    return session


def test_ending_a_sid_deletes_its_sessions_and_only_those():
    mine, other_browser = signed_in_session(), signed_in_session()
    index_session(mine, sid="sid-1", sub="alice")
    index_session(other_browser, sid="sid-2", sub="alice")

    assert end_sessions(sid="sid-1", sub=None) == 1
    assert not SessionStore().exists(mine.session_key)
    assert SessionStore().exists(other_browser.session_key)


def test_ending_a_sub_deletes_every_session_of_that_person():
    sessions = [signed_in_session() for _ in range(2)]
    for n, session in enumerate(sessions):
        index_session(session, sid=f"sid-{n}", sub="bob")
    assert end_sessions(sid=None, sub="bob") == 2


def test_ending_a_sid_takes_its_sessions_out_of_the_persons_index_too():
    mine, other_browser = signed_in_session(), signed_in_session()
    index_session(mine, sid="sid-1", sub="dave")
    index_session(other_browser, sid="sid-2", sub="dave")

    assert end_sessions(sid="sid-1", sub="dave") == 1  # a logout token with both: only the sid's end
    assert SessionStore().exists(other_browser.session_key)
    assert cache.get("sso:sub:dave") == [other_browser.session_key]
    assert end_sessions(sid=None, sub="dave") == 1
    assert cache.get("sso:sub:dave") is None


def test_a_request_that_was_running_cannot_bring_an_ended_session_back():
    running = signed_in_session()
    index_session(running, sid="sid-3", sub="carol")
    end_sessions(sid="sid-3", sub=None)  # the back-channel logout, while the request runs

    running["_sso_token"] = {"access_token": "refreshed"}
    with pytest.raises(UpdateError):
        running.save()
    assert not SessionStore().exists(running.session_key)


def test_new_sessions_are_unaffected():
    session = signed_in_session()
    session["x"] = 1
    session.save()
    assert SessionStore(session_key=session.session_key).load()["x"] == 1


def test_the_default_auth_backend_is_not_stored_and_is_read_back():
    session = signed_in_session(_auth_user_backend="django.contrib.auth.backends.ModelBackend", x=1)
    kept = PlainCacheSessionStore(session_key=session.session_key).load()  # as the cache holds it
    assert kept == {"_auth_user_id": "1", "x": 1}
    assert SessionStore(session_key=session.session_key).load() == {
        "_auth_user_id": "1",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "x": 1,
    }


def test_another_auth_backend_is_stored_as_it_is(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "tests.OtherBackend"]
    session = signed_in_session(_auth_user_backend="tests.OtherBackend")
    kept = PlainCacheSessionStore(session_key=session.session_key).load()
    assert kept["_auth_user_backend"] == "tests.OtherBackend"
    assert SessionStore(session_key=session.session_key).load()["_auth_user_backend"] == "tests.OtherBackend"


def test_a_session_without_a_user_gets_no_backend():
    session = SessionStore()
    session["x"] = 1
    session.create()
    assert SessionStore(session_key=session.session_key).load() == {"x": 1}


def test_a_session_stored_by_the_version_before_is_read_as_it_is():
    old = PlainCacheSessionStore()
    old.update({"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "x": 1})
    old.create()
    loaded = SessionStore(session_key=old.session_key).load()
    assert loaded == {"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "x": 1}


# --- a session's tokens (their own key) end with it -------------------------------------------------
def session_with_tokens() -> SessionStore:
    session = signed_in_session()
    store_token(session, {"access_token": "a", "refresh_token": "r", "expires_at": 1e10}, sid="sid-t")
    session.save()
    assert read_token(session.session_key) is not None
    return session


def test_a_sessions_tokens_are_deleted_with_it():
    session = session_with_tokens()
    session.flush()  # what logout() does
    assert read_token(session.session_key) is None


def test_a_new_session_key_leaves_the_old_keys_tokens_behind_deleted():
    session = session_with_tokens()
    old_key = session.session_key
    session.cycle_key()
    assert read_token(old_key) is None


def test_a_back_channel_logout_deletes_the_sessions_tokens():
    session = session_with_tokens()
    index_session(session, sid="sid-t", sub="tess")
    assert end_sessions(sid="sid-t", sub=None) == 1
    assert read_token(session.session_key) is None


def test_a_back_channel_logout_deletes_the_tokens_with_another_session_engine(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    session = PlainCacheSessionStore()
    session["_auth_user_id"] = "1"
    session.create()
    store_token(session, {"access_token": "a", "refresh_token": "r", "expires_at": 1e10})
    index_session(session, sid="sid-u", sub="ursula")
    assert end_sessions(sid="sid-u", sub=None) == 1
    assert read_token(session.session_key) is None
