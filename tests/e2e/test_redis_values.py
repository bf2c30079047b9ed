"""Values in the shared Redis are JSON or plain strings, never pickle (issue 8, defect A).

Every site reads what the others can write there: a pickle in Redis is code that runs in the
process that loads it. So after real sign-ins and a back-channel logout retried by the worker,
every value of every key is looked at, also inside the wrappers RQ puts around its job data
(zlib) and its results (base64).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import zlib
from collections.abc import Iterator

from devstack.stack import SITE_B
from tests.e2e.conftest import session_stored
from tests.e2e.test_single_logout import signed_in_everywhere
from tests.e2e.waiting import wait_for

# A pickle of protocol 2 or later starts with the PROTO opcode and its protocol number.
PICKLE_STARTS = tuple(b"\x80" + bytes([protocol]) for protocol in range(2, 6))


def _unwrapped(value: bytes) -> list[bytes]:
    """`value` as stored, and as RQ wraps values: zlib-compressed (job data), base64 (results)."""
    forms = [value]
    with contextlib.suppress(zlib.error):
        forms.append(zlib.decompress(value))
    with contextlib.suppress(binascii.Error, ValueError):
        forms.append(base64.b64decode(value, validate=True))
    return forms


def _values(redis_client, key: bytes) -> Iterator[bytes]:
    kind = redis_client.type(key).decode()
    if kind == "string":
        yield redis_client.get(key)
    elif kind == "hash":
        yield from redis_client.hvals(key)
    elif kind == "list":
        yield from redis_client.lrange(key, 0, -1)
    elif kind == "set":
        yield from redis_client.smembers(key)
    elif kind == "zset":
        yield from redis_client.zrange(key, 0, -1)
    elif kind == "stream":
        for _id, fields in redis_client.xrange(key):
            yield from fields.values()


def pickled_keys(redis_client, match: str = "*") -> list[str]:
    return sorted(
        key.decode()
        for key in redis_client.scan_iter(match=match)
        if any(form.startswith(PICKLE_STARTS) for value in _values(redis_client, key) for form in _unwrapped(value))
    )


def test_sessions_and_caches_of_every_site_hold_no_pickle(site_a, site_b, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    for prefix in ("idp", "site_a", "site_b"):
        assert session_stored(redis_client, prefix, person.cookie(f"{prefix}_sessionid"))
    # The sites' cached discovery document and JWKS are there too.
    assert redis_client.keys("site_a:*:sso_client:jwks:*") and redis_client.keys("site_b:*:sso_client:metadata:*")
    assert pickled_keys(redis_client) == []


def test_back_channel_logout_retries_hold_no_pickle(stack, site_a, site_b, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    b_session = person.cookie("site_b_sessionid")
    stack.processes["site_b"].stop()
    try:
        person.sign_out_at_site(site_a)  # site B cannot be told: a retry job is queued for the worker
        assert redis_client.keys("rq:job:*"), "a back-channel logout retry is queued"
        assert pickled_keys(redis_client, "rq:*") == []
    finally:
        stack.start(SITE_B)
    # The worker reads the job back (and records its result) with the same serializer.
    wait_for(lambda: not session_stored(redis_client, "site_b", b_session), timeout=45, what="the worker's retry")
    assert pickled_keys(redis_client) == []
