"""Nothing lost: the IdP's people, applications, grants and tokens, compared row by row around each fault.

What is compared, and why (every row is kept as a SHA-256 of its values, by primary key; a
difference names the table and the row's id, never a value):

- **People**, whole tables, every row: `auth_user` (every column but `last_login`, which each
  sign-in moves on), `provider_account` (the published `sub`), groups and permissions, two-factor
  devices. No journey creates, changes or deletes a person: before and after must be identical.
- **Applications**, whole tables: `oauth2_provider_application` (client ids, hashed secrets,
  redirect URIs, ...) and `provider_applicationlogout` (back-channel logout URIs). Identical.
- **Grants and tokens of the idle people**: people signed in at both sites once at the start and
  never again (soak.run). Their codes, access, refresh and ID tokens and login sessions, every
  column: nothing the soak does may touch them. Identical.
- **What the journeys have settled**: a login session once ended, its clients, a refresh token
  once revoked (rotated or signed out) and its login-session link, a code once used. The journeys
  make new ones all the time, but never change or remove a settled row: each row present before
  must be present and identical after; new ones are the journeys' doing.

And what must hold between the journeys' own rows, so that no write was left half done
(INVARIANTS): an ended login session has no live refresh token and no unused code; a live refresh
token has its access token, and belongs to a login session. A comparison made during the warm-up,
with no fault at all, shows that what is compared does not move under the journeys alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from devstack.postgres_server import is_postgres_url, libpq_url

#: (label, table, WHERE clause or "", columns left out, mode): "same" = identical row sets;
#: "kept" = every row present before is present and identical after (new rows are allowed).
#: {idle} is replaced by the idle people's ids.
COMPARED: list[tuple[str, str, str, frozenset[str], str]] = [
    ("people", "auth_user", "", frozenset({"last_login"}), "same"),
    ("people: accounts (sub)", "provider_account", "", frozenset(), "same"),
    ("people: groups", "auth_group", "", frozenset(), "same"),
    ("people: their groups", "auth_user_groups", "", frozenset(), "same"),
    ("people: their permissions", "auth_user_user_permissions", "", frozenset(), "same"),
    ("people: authenticator apps", "otp_totp_totpdevice", "", frozenset(), "same"),
    ("people: recovery code sets", "otp_static_staticdevice", "", frozenset(), "same"),
    ("people: recovery codes", "otp_static_statictoken", "", frozenset(), "same"),
    ("applications", "oauth2_provider_application", "", frozenset(), "same"),
    ("applications: logout settings", "provider_applicationlogout", "", frozenset(), "same"),
    ("idle people: codes", "oauth2_provider_grant", "user_id IN ({idle})", frozenset(), "same"),
    ("idle people: access tokens", "oauth2_provider_accesstoken", "user_id IN ({idle})", frozenset(), "same"),
    ("idle people: refresh tokens", "oauth2_provider_refreshtoken", "user_id IN ({idle})", frozenset(), "same"),
    ("idle people: ID tokens", "oauth2_provider_idtoken", "user_id IN ({idle})", frozenset(), "same"),
    ("idle people: login sessions", "provider_loginsession", "user_id IN ({idle})", frozenset(), "same"),
    ("settled: ended login sessions", "provider_loginsession", "ended IS NOT NULL", frozenset(), "kept"),
    (
        "settled: clients of ended login sessions",
        "provider_loginsessionclient",
        "login_session_id IN (SELECT id FROM provider_loginsession WHERE ended IS NOT NULL)",
        frozenset(),
        "kept",
    ),
    ("settled: revoked refresh tokens", "oauth2_provider_refreshtoken", "revoked IS NOT NULL", frozenset(), "kept"),
    (
        "settled: login sessions of revoked refresh tokens",
        "provider_refreshtokensession",
        "refresh_token_id IN (SELECT id FROM oauth2_provider_refreshtoken WHERE revoked IS NOT NULL)",
        frozenset(),
        "kept",
    ),
    ("settled: used codes", "provider_grantsession", "used IS NOT NULL", frozenset(), "kept"),
]

#: (what must hold, a query listing the ids of the rows that break it).
INVARIANTS: list[tuple[str, str]] = [
    (
        "an ended login session has no live refresh token",
        "SELECT r.id FROM oauth2_provider_refreshtoken r "
        "JOIN provider_refreshtokensession s ON s.refresh_token_id = r.id "
        "JOIN provider_loginsession l ON l.id = s.login_session_id "
        "WHERE l.ended IS NOT NULL AND r.revoked IS NULL",
    ),
    (
        "an ended login session has no unused code",
        "SELECT g.id FROM oauth2_provider_grant g JOIN provider_grantsession s ON s.grant_id = g.id "
        "JOIN provider_loginsession l ON l.id = s.login_session_id "
        "WHERE l.ended IS NOT NULL AND s.used IS NULL",
    ),
    (
        "a live refresh token has its access token",
        "SELECT r.id FROM oauth2_provider_refreshtoken r "
        "LEFT JOIN oauth2_provider_accesstoken a ON a.id = r.access_token_id "
        "WHERE r.revoked IS NULL AND a.id IS NULL",
    ),
    (
        "a live refresh token belongs to a login session",
        "SELECT r.id FROM oauth2_provider_refreshtoken r "
        "LEFT JOIN provider_refreshtokensession s ON s.refresh_token_id = r.id "
        "WHERE r.revoked IS NULL AND s.id IS NULL",
    ),
]


def query(url: str, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of one SELECT on the database at a Django database `url`."""
    if is_postgres_url(url):
        import psycopg

        with psycopg.connect(libpq_url(url), connect_timeout=10) as connection:
            cursor = connection.execute(sql)
            return [column.name for column in cursor.description], cursor.fetchall()
    import sqlite3
    from urllib.parse import urlsplit

    connection = sqlite3.connect(urlsplit(url).path, timeout=20)
    try:
        cursor = connection.execute(sql)
        return [column[0] for column in cursor.description], cursor.fetchall()
    finally:
        connection.close()


def digest(values: tuple) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


@dataclass
class Snapshot:
    taken_at: float
    tables: dict[str, dict[object, str]] = field(default_factory=dict)  # label -> {id: digest}
    invariants: dict[str, list] = field(default_factory=dict)  # what must hold -> ids breaking it

    def rows(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass
class Ledger:
    url: str  # the IdP's DATABASE_URL
    idle_usernames: list[str]
    _idle_ids: str = ""

    def idle_ids(self) -> str:
        if not self._idle_ids:
            _, rows = query(self.url, "SELECT id, username FROM auth_user WHERE username LIKE 'soak-%'")
            wanted = set(self.idle_usernames)
            self._idle_ids = ",".join(str(int(pk)) for pk, name in rows if name in wanted) or "0"
        return self._idle_ids

    def snapshot(self, taken_at: float) -> Snapshot:
        snapshot = Snapshot(taken_at)
        idle = self.idle_ids()
        for label, table, where, left_out, _mode in COMPARED:
            condition = f" WHERE {where.format(idle=idle)}" if where else ""
            columns, rows = query(self.url, f"SELECT * FROM {table}{condition}")  # noqa: S608 - our own constants
            kept = [index for index, name in enumerate(columns) if name not in left_out]
            key = columns.index("id")
            snapshot.tables[label] = {row[key]: digest(tuple(row[index] for index in kept)) for row in rows}
        for what, sql in INVARIANTS:
            _, rows = query(self.url, sql)
            snapshot.invariants[what] = sorted(row[0] for row in rows)
        return snapshot


def compare(before: Snapshot, after: Snapshot) -> dict:
    """What differs between two snapshots, by table (ids only), and the invariants broken after."""
    differences = {}
    for label, _table, _where, _left_out, mode in COMPARED:
        old, new = before.tables.get(label, {}), after.tables.get(label, {})
        removed = sorted(set(old) - set(new))
        changed = sorted(pk for pk in set(old) & set(new) if old[pk] != new[pk])
        added = sorted(set(new) - set(old)) if mode == "same" else []
        if removed or changed or added:
            differences[label] = {"removed": removed[:10], "changed": changed[:10], "added": added[:10]}
            differences[label]["counts"] = {"removed": len(removed), "changed": len(changed), "added": len(added)}
    broken = {what: {"count": len(ids), "ids": ids[:10]} for what, ids in after.invariants.items() if ids}
    return {
        "identical": not differences and not broken,
        "rows_compared": before.rows(),
        "differences": differences,
        "invariants_broken": broken,
    }
