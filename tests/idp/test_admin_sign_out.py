"""The admin's "Sign the selected people out everywhere" (issue 12, defect 4).

The action ends the people's login sessions and tokens at once, in the database, and queues the
back-channel logouts for the worker: the admin's request never waits for a site, and costs the
same number of queries for 2 people as for 20. The queued jobs are JSON in Redis (a real
redis-server here), so nothing is lost while the worker is down; the worker then tells every site.
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from provider import backchannel
from provider.models import LoginSession
from tests.idp.backchannel_world import people_signed_in_at, run_worker

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("operator", password="operator-password")
    client.force_login(user)
    return client


def sign_out_everywhere(operator, people):
    return operator.post(
        reverse("admin:auth_user_changelist"),
        {"action": "sign_out_everywhere", "_selected_action": [person.pk for person in people]},
        follow=True,
    )


def queued_deliveries(queue) -> set[tuple[int, str]]:
    """(application id, sid) of every delivery waiting in the queue's jobs, read as stored."""
    found = set()
    for job_id in queue.job_ids:
        func, _instance, args, _kwargs = json.loads(queue.fetch_job(job_id).data)
        assert func.startswith("provider.backchannel.deliver"), func
        deliveries = args[0] if func.endswith("deliver_batch") else [args]
        found |= {(application_id, sid) for application_id, sid in deliveries}
    return found


@pytest.mark.django_db
def test_the_action_calls_no_site_ends_the_sessions_at_once_and_queues_every_delivery(operator, sites, retry_queue):
    people = people_signed_in_at(sites, 3)
    sessions = list(LoginSession.objects.filter(user__in=people))
    with mock.patch.object(requests.Session, "send", side_effect=AssertionError("a site was called")) as send:
        response = sign_out_everywhere(operator, people)
    assert send.call_count == 0, "the admin's request made an HTTP call to a site"

    assert response.status_code == 200
    page = response.content.decode()
    assert "Signed out 3 person(s) at the IdP" in page
    assert "being notified" in page
    # Signed out at the IdP already: sessions ended, tokens revoked, browser sessions deleted.
    assert not LoginSession.objects.filter(user__in=people, ended__isnull=True).exists()
    assert not RefreshToken.objects.filter(user__in=people, revoked__isnull=True).exists()
    assert not AccessToken.objects.filter(user__in=people).exists()
    assert not any(SessionStore().exists(login_session.session_key) for login_session in sessions)
    # Every site of every person is waiting for the worker, in Redis.
    expected = {(site.pk, login_session.sid) for site in sites for login_session in sessions}
    assert queued_deliveries(retry_queue) == expected
    assert retry_queue.count <= 2, "a few jobs, each a batch of deliveries, not one per delivery"


@pytest.mark.django_db
def test_the_request_costs_the_same_queries_for_two_people_as_for_twenty(operator, sites, retry_queue):
    few, many = people_signed_in_at(sites, 2, prefix="few"), people_signed_in_at(sites, 20, prefix="many")
    operator.get(reverse("admin:auth_user_changelist"))  # what a process reads once (provider.csp)
    counts = []
    for people in (few, many):
        with (
            mock.patch.object(requests.Session, "send", side_effect=AssertionError("a site was called")),
            CaptureQueriesContext(connection) as queries,
        ):
            assert sign_out_everywhere(operator, people).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{counts[0]} queries for 2 people, {counts[1]} for 20"
    assert len(queued_deliveries(retry_queue)) == 2 * 22


@pytest.mark.django_db(transaction=True)
def test_with_the_worker_down_the_deliveries_wait_and_the_worker_then_tells_every_site(operator, sites, retry_queue):
    people = people_signed_in_at(sites, 3)
    sessions = list(LoginSession.objects.filter(user__in=people))
    with mock.patch.object(backchannel, "post") as post:
        sign_out_everywhere(operator, people)  # no worker running: the jobs wait in Redis
        assert post.call_count == 0
        run_worker(retry_queue)  # the worker starts
    told = {(client_id, uri) for client_id, uri, _token in (call.args for call in post.call_args_list)}
    assert len(post.call_args_list) == 6, "each site told once of each session"
    assert told == {(site.client_id, site.logout_settings.backchannel_logout_uri) for site in sites}
    sids = {json.loads(_claims(call.args[2]))["sid"] for call in post.call_args_list}
    assert sids == {login_session.sid for login_session in sessions}
    assert retry_queue.count == 0


def _claims(token: str) -> str:
    import base64

    return base64.urlsafe_b64decode(token.split(".")[1] + "===").decode()
