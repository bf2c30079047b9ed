"""The administrator's side of single logout (issue 12): signing many people out at once, and the
back-channel logouts that did not go through.

- "Sign the selected people out everywhere" answers at once, whatever the sites do (site B hangs
  here): the people are signed out of the IdP right away, and the worker tells every site, B as
  soon as it answers again.
- A delivery to a site that is down is listed in the admin as pending, then as failed once the
  worker gives up (and counted per application in /-/metrics); "retry now", with the site back,
  delivers it and the person's session there ends.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import IDP, SITE_B
from tests.e2e.conftest import idp_sql, session_stored
from tests.e2e.oidc import csrf_token
from tests.e2e.test_single_logout import wait_for
from tests.e2e.visitor import Visitor

PEOPLE = 3
#: The worker's retries in these tests (conftest: 1,1,2,2,3,3,5,5 s) take about 25 s in all.
GIVE_UP_SECONDS = 60


def create_people(stack, count: int) -> tuple[list[str], str]:
    """`count` people of the test's own at the IdP (one manage.py run), and their password."""
    usernames = [f"slo-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    password = "slo-" + secrets.token_urlsafe(12)
    code = (
        "import os; from provider.services import user_ensure\n"
        f"for name in {usernames!r}:\n"
        "    user_ensure(username=name, password=os.environ['E2E_PERSON_PASSWORD'], "
        "email=name + '@example.com', full_name='Test Person')"
    )
    result = IDP.manage("shell", "-c", code, env={**stack.env, "E2E_PERSON_PASSWORD": password})
    assert result.returncode == 0, result.stderr
    return usernames, password


def signed_in_at_both(site_a: str, site_b: str, username: str, password: str) -> Visitor:
    person = Visitor()
    assert f'id="username">{username}<' in person.sign_in(f"{site_a}/", username, password).page.text
    assert f'id="username">{username}<' in person.visit(f"{site_b}/").page.text
    return person


def user_ids(stack, usernames: list[str]) -> list[int]:
    return [idp_sql(stack, "SELECT id FROM auth_user WHERE username = %s", (name,))[0][0] for name in usernames]


def admin_action(operator: Visitor, list_url: str, action: str, selected: list[int]) -> tuple[float, str]:
    """Post an admin action from its list page, as the page's form does; (seconds the POST took, the
    page it leads to)."""
    page = operator.browser.get(list_url, timeout=30)
    started = time.monotonic()
    posted = operator.browser.post(
        list_url,
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "action": action,
            "_selected_action": [str(pk) for pk in selected],
            "index": "0",
        },
        headers={"Referer": list_url},
        allow_redirects=False,
        timeout=60,
    )
    took = time.monotonic() - started
    assert posted.status_code == 302, posted.status_code
    return took, operator.browser.get(list_url, timeout=30).text


def deliveries(stack, username: str) -> dict[str, tuple[str, int, str]]:
    """The person's recorded deliveries by client id: (status, attempts, last error)."""
    rows = idp_sql(
        stack,
        "SELECT a.client_id, d.status, d.attempts, d.last_error FROM provider_backchanneldelivery d "
        "JOIN oauth2_provider_application a ON a.id = d.application_id "
        "JOIN provider_loginsession s ON s.id = d.login_session_id "
        "JOIN auth_user u ON u.id = s.user_id WHERE u.username = %s",
        (username,),
    )
    return {client_id: (status, attempts, error) for client_id, status, attempts, error in rows}


def admin_list_of(operator: Visitor, idp, username: str, **filters: str) -> str:
    query = {"q": username, **filters}
    return operator.browser.get(f"{idp.url}/admin/provider/backchanneldelivery/", params=query, timeout=30).text


def metric(idp, name: str, **labels: str) -> float:
    response = requests.get(f"{idp.url}/-/metrics", timeout=30)  # open to loopback
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def operator(idp, admin) -> Visitor:
    person = Visitor()
    person.sign_in(f"{idp.url}/admin/", *admin)
    return person


def test_signing_out_several_people_answers_at_once_and_the_worker_tells_every_site(
    stack, idp, site_a, site_b, operator, redis_client
):
    usernames, password = create_people(stack, PEOPLE)
    people = [signed_in_at_both(site_a, site_b, username, password) for username in usernames]
    sessions = {
        prefix: [person.cookie(f"{prefix}_sessionid") for person in people] for prefix in ("idp", "site_a", "site_b")
    }
    stack.processes["site_b"].pause()  # site B accepts connections and never answers
    try:
        took, page = admin_action(
            operator, f"{idp.url}/admin/auth/user/", "sign_out_everywhere", user_ids(stack, usernames)
        )
        # Telling the sites in the request waited up to 2 s per person for B: 6 s and more.
        assert took < 2.5, f"the admin's page waited {took:.1f}s for the sites"
        assert f"Signed out {PEOPLE} person(s) at the IdP" in page and "being notified" in page

        # Signed out of the IdP at once, before any site is told.
        for person, key in zip(people, sessions["idp"], strict=True):
            assert not session_stored(redis_client, "idp", key)
            assert person.visit(f"{idp.url}/").shows_login_form()
        # The worker tells site A; B, hanging, keeps its sessions for now.
        for key in sessions["site_a"]:
            wait_for(lambda key=key: not session_stored(redis_client, "site_a", key), timeout=30, what="A told")
        # The worker's first attempt at B times out: pending, with the reason, to be retried.
        wait_for(
            lambda: all(deliveries(stack, username)["site-b"][1] >= 1 for username in usernames),
            timeout=30,
            what="the worker's attempt at B timing out",
        )
        for username in usernames:
            status, _attempts, error = deliveries(stack, username)["site-b"]
            assert status == "pending" and error.startswith("No answer within"), (status, error)
        assert all(session_stored(redis_client, "site_b", key) for key in sessions["site_b"])
    finally:
        stack.processes["site_b"].resume()
    for key in sessions["site_b"]:
        wait_for(
            lambda key=key: not session_stored(redis_client, "site_b", key), timeout=GIVE_UP_SECONDS, what="B told"
        )
    for person in people:
        for site in (site_a, site_b):
            assert person.visit(f"{site}/").shows_login_form(), site
    # B may have ended them on the attempts it was frozen on; the worker's retry is then answered.
    for username in usernames:
        wait_for(
            lambda username=username: (
                {client: row[0] for client, row in deliveries(stack, username).items()}
                == {"site-a": "delivered", "site-b": "delivered"}
            ),
            timeout=GIVE_UP_SECONDS,
            what="every delivery recorded as made",
        )


def test_a_site_that_stays_down_is_shown_pending_then_failed_and_retry_now_delivers(
    stack, idp, site_a, site_b, operator, redis_client
):
    [username], password = create_people(stack, 1)
    person = signed_in_at_both(site_a, site_b, username, password)
    b_session = person.cookie("site_b_sessionid")
    stack.processes["site_b"].stop()
    try:
        assert "You are signed out" in person.sign_out_at_site(site_a).page.text
        # Pending: queued for the worker, with what went wrong in plain words.
        status, attempts, error = deliveries(stack, username)["site-b"]
        assert (status, attempts) == ("pending", 1) and error.startswith("Could not connect"), (status, error)
        assert "site-a" not in deliveries(stack, username), "A was told at once"
        listing = admin_list_of(operator, idp, username)
        assert username in listing and "Client site B" in listing
        assert "Pending" in listing and "Could not connect" in listing
        # Failed, once the worker has tried its retries.
        wait_for(
            lambda: deliveries(stack, username)["site-b"][0] == "failed",
            timeout=GIVE_UP_SECONDS,
            what="the worker giving up on site B",
        )
        failed_list = admin_list_of(operator, idp, username, status__exact="failed")
        assert username in failed_list and "Could not connect" in failed_list
        assert metric(idp, "idp_backchannel_logout_undelivered", client_id="site-b", state="failed") >= 1
    finally:
        stack.start(SITE_B)
    assert session_stored(redis_client, "site_b", b_session), "nobody told B yet"

    [(delivery_id,)] = idp_sql(
        stack,
        "SELECT d.id FROM provider_backchanneldelivery d JOIN provider_loginsession s ON s.id = d.login_session_id "
        "JOIN auth_user u ON u.id = s.user_id WHERE u.username = %s",
        (username,),
    )
    _, page = admin_action(operator, f"{idp.url}/admin/provider/backchanneldelivery/", "retry_now", [delivery_id])
    assert "Queued 1 back-channel logout(s) for the worker" in page
    wait_for(lambda: not session_stored(redis_client, "site_b", b_session), timeout=30, what="the retry reaching B")
    assert person.visit(f"{site_b}/").shows_login_form()
    assert deliveries(stack, username)["site-b"][0] == "delivered"
    assert not re.search(r"eyJ[\w-]+\.", admin_list_of(operator, idp, username)), "no token in the admin"
