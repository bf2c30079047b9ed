"""Rotating the IdP's signing key signs nobody out (`manage.py rotate_signing_key`, docs/scaling.md).

A stack of this module's own (its Redis, its databases, the IdP, both sites and the worker), the
IdP signing with key K1 from a file. The operator's command makes K2 and prints three steps; the
IdP and its worker restart with each step's values, as an operator rolls them out:

1. K2 published, K1 still signing;  2. K2 signing, K1 still published;  3. K1 retired.

The sites keep the JWKS for SSO_METADATA_CACHE_SECONDS, 3 s here, so a retired key stops
verifying at the sites within the test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from joserfc.jwk import RSAKey

from devstack.processes import free_port
from devstack.redis_server import RedisServer
from devstack.stack import IDP, Stack
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file
from tests.e2e.conftest import production_settings, session_stored, stack_databases
from tests.e2e.oidc import AuthRequest, Client, Provider
from tests.e2e.test_single_logout import idp_sid, logout_token, post_logout_token, signed_in_everywhere
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for
from tests.rotation_steps import printed_steps

METADATA_CACHE_SECONDS = 3


@pytest.fixture(scope="module")
def rotation(tmp_path_factory, database_server) -> Iterator[tuple[Stack, Path]]:
    """The running stack and the folder of its key files (K1 in k1.pem, signing)."""
    keys = tmp_path_factory.mktemp("rotation-keys")
    write_private_file(keys / "k1.pem", generate_rsa_private_key_pem())
    redis_server = RedisServer(tmp_path_factory.mktemp("rotation-redis"))
    running: Stack | None = None
    try:
        redis_server.start()
        env = {
            **production_settings(tmp_path_factory.mktemp("rotation-secrets"), redis_server.url),
            **stack_databases(database_server, "rotation_"),
            "OIDC_RSA_PRIVATE_KEY": "",  # whatever the caller's environment holds: the key file is used
            "OIDC_RSA_PRIVATE_KEY_FILE": str(keys / "k1.pem"),
            "OIDC_RSA_INACTIVE_KEY_FILES": "",
            "ACCESS_TOKEN_SECONDS": "300",  # no refresh falls into a restart: this test is about keys
            "SSO_METADATA_CACHE_SECONDS": str(METADATA_CACHE_SECONDS),
        }
        ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port()}
        running = Stack(state_dir=tmp_path_factory.mktemp("rotation-stack"), ports=ports, env=env)
        running.prepare()
        running.start_all()
        yield running, keys
    finally:
        if running is not None:
            running.stop()
        redis_server.stop()


def roll_out(stack: Stack, step: dict[str, str], generation: int) -> None:
    """Restart every IdP process with `step`'s values: its server, then its back-channel worker."""
    stack.restart(IDP, **step)
    for name in [name for name in stack.processes if name.startswith("worker")]:
        stack.processes.pop(name).stop()
    stack.start_worker(name=f"worker-{generation}")  # a log of its own: "started" is read from it


def kid_of(path: Path) -> str:
    return RSAKey.import_key(path.read_text()).thumbprint()


def signing_key_of(path: Path) -> RSAKey:
    return RSAKey.import_key(path.read_text(), parameters={"kid": kid_of(path)})


def published_kids(idp: Provider) -> list[str]:
    return [key["kid"] for key in requests.get(idp.metadata["jwks_uri"], timeout=10).json()["keys"]]


def fresh_id_token_kid(idp: Provider, client: Client, alice: tuple[str, str]) -> str:
    """The `kid` of a new ID token (code flow, a browser of its own), once it verifies against the JWKS."""
    request = AuthRequest(client)
    id_token = idp.exchange(request, idp.sign_in(requests.Session(), request, *alice)["code"]).json()["id_token"]
    idp.verify_id_token(id_token, request)
    return json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))["kid"]


def still_signed_in(person: Visitor, site: str) -> bool:
    visit = person.visit(f"{site}/")
    return visit.redirects == 0 and signed_in_page_shows_alice(visit.page)


@pytest.fixture(scope="module")
def rotation_redis(rotation) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(rotation[0].env["REDIS_URL"])
    yield client
    client.close()


def test_the_signing_key_rotates_in_three_steps_and_nobody_is_signed_out(rotation, rotation_redis):
    stack, keys = rotation
    redis_client = rotation_redis
    idp = Provider(stack.url(IDP))
    site_a, site_b = stack.env["SITE_A_URL"], stack.env["SITE_B_URL"]
    alice = ("alice", stack.env["DEMO_PASSWORD"])
    client = Client("site-a", stack.env["SITE_A_CLIENT_SECRET"], f"{site_a}/sso/callback/")
    k1, k2 = keys / "k1.pem", keys / "k2.pem"

    # Signed in at both sites while K1 signs.
    assert published_kids(idp) == [kid_of(k1)]
    signs_out_at_idp = signed_in_everywhere(site_a, site_b, alice)
    gets_k1_logout_token = signed_in_everywhere(site_a, site_b, alice)

    # The operator makes K2; the command prints its kid and the three steps, never the key.
    printed = stack.manage(IDP, "rotate_signing_key", str(k2))
    assert f"New key:   kid {kid_of(k2)}" in printed and "PRIVATE KEY" not in printed
    publish, sign, retire = printed_steps(printed)
    again = IDP.manage("rotate_signing_key", str(k2), env=stack.env)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert [line for line in again.stderr.splitlines() if "already exists" in line] == [
        f"CommandError: {k2} already exists: give the path of a new file (this command never overwrites a key)."
    ]

    # Step 1: K2 published, K1 still signing; nobody signed out by the restart.
    roll_out(stack, publish, 1)
    assert published_kids(idp) == [kid_of(k1), kid_of(k2)]
    assert fresh_id_token_kid(idp, client, alice) == kid_of(k1)
    assert still_signed_in(signs_out_at_idp, site_b) and still_signed_in(gets_k1_logout_token, site_a)

    # Step 2: K2 signs; tokens of K1 still verify.
    roll_out(stack, sign, 2)
    assert published_kids(idp) == [kid_of(k2), kid_of(k1)]
    assert fresh_id_token_kid(idp, client, alice) == kid_of(k2)

    # A real sign-out at the IdP: logout tokens signed with K2 reach both sites at once and are accepted.
    b_session = signs_out_at_idp.cookie("site_b_sessionid")
    assert "You are signed out" in signs_out_at_idp.post_form(f"{idp.url}/", f"{idp.url}/accounts/logout/").page.text
    assert not session_stored(redis_client, "site_b", b_session), "site B took the K2 logout token"
    assert not session_stored(redis_client, "site_a", signs_out_at_idp.cookie("site_a_sessionid"))

    # A logout token signed with K1 (as the IdP signed them before step 2) is still accepted.
    sid = idp_sid(stack, gets_k1_logout_token)
    assert post_logout_token(site_a, logout_token(signing_key_of(k1), idp, sid=sid)).status_code == 200
    assert not session_stored(redis_client, "site_a", gets_k1_logout_token.cookie("site_a_sessionid"))
    assert still_signed_in(gets_k1_logout_token, site_b), "only site A was told"

    # New sign-ins at both sites, with ID tokens signed by K2.
    newcomer = signed_in_everywhere(site_a, site_b, alice)

    # Step 3: K1 retired. Within SSO_METADATA_CACHE_SECONDS site B's cached JWKS has expired, and a
    # logout token of K1 is refused (this one names a sid nobody has: accepted, it ends nothing).
    roll_out(stack, retire, 3)
    assert published_kids(idp) == [kid_of(k2)]

    def k1_refused() -> bool:
        token = logout_token(signing_key_of(k1), idp, sid="a-sid-nobody-has", aud="site-b")
        answer = post_logout_token(site_b, token)
        assert answer.status_code in (200, 400), answer.text
        return answer.status_code == 400

    took = wait_for(k1_refused, timeout=30, what="site B refusing a logout token signed with the retired key")
    assert took < METADATA_CACHE_SECONDS + 10

    refused = post_logout_token(site_b, logout_token(signing_key_of(k1), idp, sid=sid, aud="site-b"))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "The logout token is signed with a key the identity provider does not publish.",
    }
    assert session_stored(redis_client, "site_b", gets_k1_logout_token.cookie("site_b_sessionid"))
    assert still_signed_in(gets_k1_logout_token, site_b), "the refused token ended nothing"

    # Signing in goes on with K2: site A signs the same browser in again without a password.
    assert signed_in_page_shows_alice(gets_k1_logout_token.visit(f"{site_a}/").page)
    assert still_signed_in(newcomer, site_a) and still_signed_in(newcomer, site_b)
