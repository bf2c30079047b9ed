"""Back-channel logouts that did not go through, as an operator sees them (issue 12, defect 5).

Every delivery the sign-out could not make is a row of its own in the database: pending (queued,
or waiting out a backoff) until the worker delivers it or gives up (failed), with the number of
attempts and the last error in plain words. The admin lists them per application, with the
person's username and never a token, and "retry now" queues them again at once. /-/metrics counts
the pending and failed ones per application (client_id).

The sites' back-channel URIs point at ports where nothing listens: a real connection refused.
"""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rq.job import Job

from provider import backchannel
from tests.idp.backchannel_world import people_signed_in_at, run_worker, signed_in


def Delivery():  # the model, imported when a test runs: each test fails alone without it
    from provider.models import BackchannelDelivery

    return BackchannelDelivery


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("operator", password="operator-password")
    client.force_login(user)
    return client


@pytest.fixture
def quick_retries(settings):
    """Two retries, due at once: a worker run in burst mode makes every attempt."""
    settings.BACKCHANNEL_LOGOUT = {**settings.BACKCHANNEL_LOGOUT, "RETRY_INTERVALS": [0, 0]}


def sign_out(person) -> list[tuple[int, str]]:
    """The person signs out of their one login session; the IdP tells the sites (or tries)."""
    from provider.login_sessions import user_sign_out_everywhere

    deliveries = user_sign_out_everywhere(person)
    backchannel.notify(deliveries)
    return deliveries


def deliveries_of(person):
    return Delivery().objects.filter(login_session__user=person).select_related("application")


# --- what is recorded ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_delivery_that_fails_at_sign_out_is_pending_with_its_reason_in_plain_words(sites, retry_queue):
    [person] = people_signed_in_at(sites, 1)
    sign_out(person)

    rows = list(deliveries_of(person))
    assert {row.application.client_id for row in rows} == {"site-a", "site-b"}
    for row in rows:
        assert row.status == "pending" and row.attempts == 1
        assert row.last_error.startswith("Could not connect"), row.last_error
        assert row.job_id in retry_queue.job_ids, "its retry waits in the queue"


@pytest.mark.django_db
def test_a_delivery_made_at_sign_out_leaves_no_row(sites, retry_queue):
    [person] = people_signed_in_at(sites, 1)
    with mock.patch.object(backchannel, "post", return_value=None):
        sign_out(person)
    assert not deliveries_of(person).exists()
    assert retry_queue.count == 0


@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_then_gives_up_and_the_delivery_shows_failed(sites, retry_queue, quick_retries):
    from ops.backchannel import RETRIES_KEY

    [person] = people_signed_in_at(sites, 1)
    sign_out(person)
    run_worker(retry_queue)

    for row in deliveries_of(person):
        assert row.status == "failed", row.application.client_id
        assert row.attempts == 1 + 3, "the sign-out's attempt, the worker's, and two retries"
        assert row.last_error.startswith("Could not connect")
        assert row.last_attempt and row.next_attempt is None
    counts = retry_queue.connection.hgetall(RETRIES_KEY)
    assert counts == {b"failed": b"4", b"given_up": b"2"}, "counted per delivery"


# --- the admin ----------------------------------------------------------------------------------------
def make_rows(sites):
    """alice: pending at A and failed at B; bob: delivered at A (not a problem)."""
    alice, bob = (get_user_model().objects.create_user(name) for name in ("alice", "bob"))
    site_a, site_b = sites
    now = timezone.now()
    Delivery().objects.create(
        application=site_a,
        login_session=signed_in(alice),
        status="pending",
        attempts=2,
        last_error="No answer within 2 seconds",
        last_attempt=now,
        next_attempt=now + timedelta(seconds=30),
    )
    failed = Delivery().objects.create(
        application=site_b,
        login_session=signed_in(alice),
        status="failed",
        attempts=9,
        last_error="The site answered HTTP 503 Service Unavailable",
        last_attempt=now,
    )
    Delivery().objects.create(application=site_a, login_session=signed_in(bob), status="delivered", attempts=1)
    return failed


@pytest.mark.django_db
def test_the_admin_lists_the_deliveries_per_application_with_person_and_error(operator, sites, retry_queue):
    make_rows(sites)
    site_b = sites[1]
    listing = operator.get(reverse("admin:provider_backchanneldelivery_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    for shown in ("alice", "Site A", "Site B", "Pending", "Failed", "No answer within 2 seconds", "HTTP 503"):
        assert shown in page, shown

    only_b = operator.get(
        reverse("admin:provider_backchanneldelivery_changelist"), {"application__id__exact": site_b.pk}
    ).content.decode()
    assert "HTTP 503" in only_b and "No answer within" not in only_b
    failed_only = operator.get(
        reverse("admin:provider_backchanneldelivery_changelist"), {"status__exact": "failed"}
    ).content.decode()
    assert "HTTP 503" in failed_only and "No answer within" not in failed_only

    # Per application, on the applications' list: how many wait, how many failed, with a link.
    applications = operator.get(reverse("admin:oauth2_provider_application_changelist")).content.decode()
    assert "1 pending" in applications and "1 failed" in applications
    assert f"application__id__exact={site_b.pk}" in applications
    # And on the application's own page, with its back-channel logout settings.
    page_b = operator.get(reverse("admin:oauth2_provider_application_change", args=[site_b.pk])).content.decode()
    assert "0 pending" in page_b and "1 failed" in page_b
    assert operator.get(reverse("admin:oauth2_provider_application_add")).status_code == 200


@pytest.mark.django_db
def test_the_admin_never_shows_a_token_or_a_session_id(operator, sites, retry_queue):
    failed = make_rows(sites)
    pages = [
        operator.get(reverse("admin:provider_backchanneldelivery_changelist")).content.decode(),
        operator.get(reverse("admin:provider_backchanneldelivery_change", args=[failed.pk])).content.decode(),
    ]
    sids = [row.login_session.sid for row in Delivery().objects.select_related("login_session")]
    for page in pages:
        assert "eyJ" not in page, "no JWT"
        assert not any(sid in page for sid in sids)
        assert not any(sid[:8] in page for sid in sids)


@pytest.mark.django_db
def test_nobody_adds_or_edits_a_delivery_by_hand(operator, sites, retry_queue):
    failed = make_rows(sites)
    assert operator.get(reverse("admin:provider_backchanneldelivery_add")).status_code == 403
    change = operator.get(reverse("admin:provider_backchanneldelivery_change", args=[failed.pk])).content.decode()
    assert 'name="last_error"' not in change and 'name="status"' not in change, "read-only"


@pytest.mark.django_db(transaction=True)
def test_retry_now_queues_a_failed_delivery_and_the_worker_delivers_it(operator, sites, retry_queue):
    failed = make_rows(sites)
    response = operator.post(
        reverse("admin:provider_backchanneldelivery_changelist"),
        {"action": "retry_now", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert "Queued 1 back-channel logout(s) for the worker" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.job_id in retry_queue.job_ids
    assert failed.next_attempt is not None and failed.next_attempt <= timezone.now()

    with mock.patch.object(backchannel, "post", return_value=None) as post:
        run_worker(retry_queue)
    [call] = post.call_args_list
    client_id, uri, _token = call.args
    assert client_id == "site-b" and uri == sites[1].logout_settings.backchannel_logout_uri
    failed.refresh_from_db()
    assert failed.status == "delivered" and failed.attempts == 10 and failed.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_retry_now_brings_a_waiting_delivery_forward_and_its_old_job_then_does_nothing(
    operator, sites, retry_queue, settings
):
    settings.BACKCHANNEL_LOGOUT = {**settings.BACKCHANNEL_LOGOUT, "RETRY_INTERVALS": [600]}
    [person] = people_signed_in_at(sites[:1], 1)
    sign_out(person)  # site A is down: queued
    run_worker(retry_queue)  # the worker's attempt fails too: the next one is in 10 minutes
    [row] = deliveries_of(person)
    assert row.status == "pending" and row.attempts == 2
    assert row.next_attempt > timezone.now() + timedelta(minutes=9)
    old_job = row.job_id
    assert old_job in retry_queue.scheduled_job_registry.get_job_ids()

    operator.post(
        reverse("admin:provider_backchanneldelivery_changelist"), {"action": "retry_now", "_selected_action": [row.pk]}
    )
    with mock.patch.object(backchannel, "post", return_value=None) as post:
        run_worker(retry_queue)
        assert post.call_count == 1
        row.refresh_from_db()
        assert row.status == "delivered"
        # The old retry's time comes: it finds its delivery made and sends nothing.
        job = Job.fetch(old_job, connection=retry_queue.connection, serializer=retry_queue.serializer)
        retry_queue.scheduled_job_registry.remove(job)
        retry_queue.enqueue_job(job)
        run_worker(retry_queue)
        assert post.call_count == 1


@pytest.mark.django_db
def test_retry_now_from_the_applications_list_queues_every_undelivered_one_of_it(operator, sites, retry_queue):
    failed = make_rows(sites)
    operator.post(
        reverse("admin:oauth2_provider_application_changelist"),
        {"action": "retry_backchannel_logouts_now", "_selected_action": [sites[1].pk]},
    )
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.job_id in retry_queue.job_ids
    assert Delivery().objects.get(application=sites[0], status="pending").job_id not in retry_queue.job_ids


# --- the metrics --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_metrics_count_pending_and_failed_deliveries_per_application(sites, retry_queue):
    from ops.backchannel import UndeliveredCollector

    make_rows(sites)
    [family] = UndeliveredCollector().collect()
    assert family.name == "idp_backchannel_logout_undelivered"
    counted = {(sample.labels["client_id"], sample.labels["state"]): sample.value for sample in family.samples}
    assert counted == {
        ("site-a", "pending"): 1,
        ("site-a", "failed"): 0,
        ("site-b", "pending"): 0,
        ("site-b", "failed"): 1,
    }


@pytest.mark.django_db
def test_the_scrape_shows_them(client, sites, retry_queue):
    make_rows(sites)
    text = client.get("/-/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'idp_backchannel_logout_undelivered{client_id="site-b",state="failed"} 1.0' in text


def test_the_jobs_are_json_with_the_deliveries_as_arguments(redis_server, settings):
    settings.REDIS_URL = redis_server.url
    queue = backchannel.queue()
    job = Job.create(
        backchannel.deliver_batch, args=([[7, "the-sid"]],), connection=queue.connection, serializer=queue.serializer
    )
    assert json.loads(job.data)[2] == [[[7, "the-sid"]]]
