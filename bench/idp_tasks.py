"""Set-up work inside the IdP's Django environment, run by the bench as a subprocess.

    python -m bench.idp_tasks seed-people COUNT PREFIX       # password from BENCH_PASSWORD
    python -m bench.idp_tasks register-fanout COUNT RECEIVER_URL   # secret from BENCH_FANOUT_SECRET
    python -m bench.idp_tasks scale-seed PEOPLE TOKENS
    python -m bench.idp_tasks counts

Run with the IdP's environment (DATABASE_URL, ...), DJANGO_SETTINGS_MODULE=bench.idp_settings,
cwd idp/ and PYTHONPATH holding the repository root and idp/. Prints one JSON line; never a
password, token or secret.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from datetime import timedelta

BATCH = 5000


def seed_people(count: int, prefix: str) -> dict:
    """`count` people PREFIX000000…, all with BENCH_PASSWORD, hashed once (Argon2id) and shared."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from provider.models import Account

    User = get_user_model()
    encoded = make_password(os.environ["BENCH_PASSWORD"])
    names = [f"{prefix}{index:06d}" for index in range(count)]
    existing = set(User.objects.filter(username__startswith=prefix).values_list("username", flat=True))
    started = time.monotonic()
    created = 0
    for start in range(0, count, BATCH):
        batch = [
            User(username=name, password=encoded, email=f"{name}@example.com", first_name="Bench", last_name=name)
            for name in names[start : start + BATCH]
            if name not in existing
        ]
        User.objects.bulk_create(batch, batch_size=BATCH)
        created += len(batch)
    users = User.objects.filter(username__startswith=prefix, account__isnull=True).values_list("pk", flat=True)
    pending = list(users)
    for start in range(0, len(pending), BATCH):
        Account.objects.bulk_create(
            [Account(user_id=pk, email_verified=True) for pk in pending[start : start + BATCH]], batch_size=BATCH
        )
    return {"created": created, "seconds": round(time.monotonic() - started, 1)}


def register_fanout(count: int, receiver_url: str) -> dict:
    """`count` confidential, trusted clients whose back-channel logout URI is the bench's receiver."""
    from provider.services import application_register

    client_ids = []
    for index in range(count):
        client_id = f"bench-fanout-{index:02d}"
        application_register(
            name=f"Bench fan-out site {index}",
            client_id=client_id,
            client_secret=os.environ["BENCH_FANOUT_SECRET"],
            redirect_uris=[f"{receiver_url}/callback/{index}/"],
            backchannel_logout_uri=f"{receiver_url}/logout/{index}/",
            confidential=True,
            trusted=True,
        )
        client_ids.append(client_id)
    return {"client_ids": client_ids}


def scale_seed(people: int, tokens: int) -> dict:
    """A large database: `people` more people, `tokens` tokens (half access, half refresh), some grants.

    Bulk inserts of valid rows (hashed token checksums, expiry in the future), spread over the
    people and the two client sites; nobody will present these tokens, they are the volume the
    real ones are looked up among.
    """
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from oauth2_provider.models import (
        get_access_token_model,
        get_application_model,
        get_grant_model,
        get_refresh_token_model,
        set_token_value,
    )

    started = time.monotonic()
    seeded = seed_people(people, "scale")
    User = get_user_model()
    AccessToken, RefreshToken, Grant = get_access_token_model(), get_refresh_token_model(), get_grant_model()
    applications = list(get_application_model().objects.filter(client_id__in=["site-a", "site-b"]))
    user_ids = list(User.objects.filter(username__startswith="scale").values_list("pk", flat=True))
    expires = timezone.now() + timedelta(hours=8)
    pairs = tokens // 2
    made = 0
    while made < pairs:
        size = min(BATCH, pairs - made)
        access = []
        for offset in range(size):
            number = made + offset
            token = AccessToken(
                user_id=user_ids[number % len(user_ids)],
                application=applications[number % len(applications)],
                expires=expires,
                scope="openid profile email",
            )
            set_token_value(token, secrets.token_urlsafe(24))
            access.append(token)
        AccessToken.objects.bulk_create(access, batch_size=BATCH)
        refresh = []
        for token in access:
            item = RefreshToken(user_id=token.user_id, application=token.application, access_token=token)
            set_token_value(item, secrets.token_urlsafe(24))
            refresh.append(item)
        RefreshToken.objects.bulk_create(refresh, batch_size=BATCH)
        made += size
    grants = [
        Grant(
            user_id=user_ids[number % len(user_ids)],
            code=secrets.token_urlsafe(24),
            application=applications[number % len(applications)],
            expires=expires,
            redirect_uri=applications[number % len(applications)].redirect_uris.split()[0],
            scope="openid",
            code_challenge=secrets.token_urlsafe(32),
            code_challenge_method="S256",
        )
        for number in range(min(10_000, people))
    ]
    Grant.objects.bulk_create(grants, batch_size=BATCH)
    return {"people": seeded, "token_pairs": made, "grants": len(grants), "seconds": round(time.monotonic() - started)}


def counts() -> dict:
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

    return {
        "people": get_user_model().objects.count(),
        "access_tokens": get_access_token_model().objects.count(),
        "refresh_tokens": get_refresh_token_model().objects.count(),
        "grants": get_grant_model().objects.count(),
    }


def main(argv: list[str]) -> int:
    import django

    django.setup()
    command, *args = argv
    if command == "seed-people":
        result = seed_people(int(args[0]), args[1])
    elif command == "register-fanout":
        result = register_fanout(int(args[0]), args[1])
    elif command == "scale-seed":
        result = scale_seed(int(args[0]), int(args[1]))
    elif command == "counts":
        result = counts()
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
