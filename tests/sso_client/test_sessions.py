"""A session ended by a logout stays ended, even if a request that was running saves it."""

import pytest
from django.contrib.sessions.backends.base import UpdateError

from sso_client.session_index import end_sessions, index_session
from sso_client.sessions import SessionStore


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
