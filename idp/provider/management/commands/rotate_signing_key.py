"""`manage.py rotate_signing_key PATH`: make a new ID-token signing key, and say how to roll it out.

The signing keys are configuration (idp_server.signing_key), so this command changes none. It
writes a new RSA key to PATH (a new file, readable by its owner only) and prints, with the values
of the current configuration, the three changes that replace the signing key without any token
failing to verify while the IdP's processes restart one by one (another IdP's "passive key"):

1. publish the new key: listed in OIDC_RSA_INACTIVE_KEY_FILES, it is in the JWKS but signs nothing;
2. sign with it: OIDC_RSA_PRIVATE_KEY_FILE names it, and the old key moves to the published list;
3. retire the old key (drop it from OIDC_RSA_INACTIVE_KEY_FILES) once no token it signed is in use.

`--show` prints the keys the current configuration publishes and the one that signs. Neither
prints a key itself, only its `kid`. docs/scaling.md tells the whole procedure.
"""

from __future__ import annotations

import os
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from oauth2_provider.settings import oauth2_settings

from idp_server.signing_key import (
    LOCAL_KEY_NAME,
    generate_rsa_private_key_pem,
    inactive_key_paths,
    read_key_file,
    write_private_file,
)
from provider.backchannel import LOGOUT_TOKEN_SECONDS
from provider.signing import key_id

#: The allowance for clock differences the sites give `exp` (sso_client's CLOCK_SKEW_SECONDS).
SITES_CLOCK_SKEW_SECONDS = 60
#: The sites' SSO_METADATA_CACHE_SECONDS when it is not set.
SITES_METADATA_CACHE_SECONDS = 3600
#: Where the old key's PEM text goes when it came from OIDC_RSA_PRIVATE_KEY (a suggestion printed).
SAVED_OLD_KEY_NAME = "previous-signing-key.pem"

TEXT, FILE, LOCAL = "OIDC_RSA_PRIVATE_KEY", "OIDC_RSA_PRIVATE_KEY_FILE", "local"


@dataclass(frozen=True)
class Key:
    kid: str
    path: str | None  # None: the PEM text of OIDC_RSA_PRIVATE_KEY


@dataclass(frozen=True)
class Configuration:
    """The keys this process's environment configures, read as idp_server.signing_key reads them."""

    signing: Key
    source: str  # TEXT, FILE or LOCAL (the key generated for a developer's machine)
    published: tuple[Key, ...]  # OIDC_RSA_INACTIVE_KEY_FILES, in order

    def describe_signing(self) -> str:
        if self.source == TEXT:
            return "the PEM text in OIDC_RSA_PRIVATE_KEY"
        if self.source == LOCAL:
            return f"{self.signing.path} (generated for this machine: DJANGO_DEBUG is on and no key is configured)"
        return f"OIDC_RSA_PRIVATE_KEY_FILE={self.signing.path}"

    def other_published_paths(self) -> list[str]:
        """The published keys' paths, the signing key left out, each once."""
        paths: list[str] = []
        for key in self.published:
            if key.kid != self.signing.kid and key.path not in paths:
                paths.append(key.path)
        return paths


def _kid(pem: str, where: str) -> str:
    try:
        return key_id(pem)
    except Exception:  # jwcrypto raises several kinds for a text that is no RSA key
        raise CommandError(f"{where} does not hold an RSA private key.") from None


def read_configuration() -> Configuration:
    try:
        published = tuple(
            Key(_kid(read_key_file(path, "OIDC_RSA_INACTIVE_KEY_FILES"), path), path) for path in inactive_key_paths()
        )
        if pem := os.environ.get("OIDC_RSA_PRIVATE_KEY"):
            return Configuration(Key(_kid(pem, "OIDC_RSA_PRIVATE_KEY"), None), TEXT, published)
        if path := os.environ.get("OIDC_RSA_PRIVATE_KEY_FILE"):
            return Configuration(Key(_kid(read_key_file(path, FILE), path), path), FILE, published)
        local = Path(settings.LOCAL_DIR) / LOCAL_KEY_NAME
        if settings.DEBUG and local.exists():
            return Configuration(
                Key(_kid(read_key_file(local, "The local key"), str(local)), str(local)), LOCAL, published
            )
    except ImproperlyConfigured as error:
        raise CommandError(str(error)) from None
    raise CommandError("No signing key is configured: set OIDC_RSA_PRIVATE_KEY_FILE (or OIDC_RSA_PRIVATE_KEY).")


def assignment(name: str, value: str | list[str], note: str = "") -> str:
    """`    NAME=value    # note`, the value quoted for a shell when it needs it."""
    text = ",".join(value) if isinstance(value, list) else value
    line = f"    {name}={shlex.quote(text) if text else ''}"
    return f"{line:<60} # {note}" if note else line


def paragraph(text: str, indent: str = "  ") -> str:
    return textwrap.fill(
        text, width=100, initial_indent=indent, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


class Command(BaseCommand):
    help = (
        "Write a new ID-token signing key to PATH (never over an existing file) and print the three "
        "configuration changes that roll it out, with its kid; or, with --show, the keys published now."
    )
    requires_system_checks = []  # an operator's tool: needs neither the database nor Redis

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", help="Where to write the new key: a file that does not exist yet")
        parser.add_argument(
            "--show", action="store_true", help="Print the keys the configuration publishes and the one that signs"
        )
        parser.add_argument(
            "--sites-metadata-cache-seconds",
            type=int,
            default=SITES_METADATA_CACHE_SECONDS,
            help="The sites' SSO_METADATA_CACHE_SECONDS, for the waiting time printed (default %(default)s)",
        )

    def handle(self, *args, path: str | None, show: bool, sites_metadata_cache_seconds: int, **options) -> None:
        config = read_configuration()
        if show:
            if path:
                raise CommandError("--show writes no key: give it no path.")
            self.show(config)
            return
        if not path:
            raise CommandError("Give the path of the new key file (a file that does not exist yet), or --show.")
        target, pem = self.write_new_key(path)
        self.say(f"Wrote a new signing key to {target} (readable by its owner only; the key is not shown).")
        self.say(f"New key:   kid {key_id(pem)}")
        self.show(config)
        self.say("")
        self.plan(config, target, key_id(pem), cache_seconds=sites_metadata_cache_seconds)

    def say(self, line: str) -> None:
        self.stdout.write(line)

    def write_new_key(self, path: str) -> tuple[Path, str]:
        target = Path(path).expanduser().absolute()
        if "," in str(target):
            raise CommandError(
                f"{target}: a key's path cannot hold a comma (OIDC_RSA_INACTIVE_KEY_FILES separates paths with commas)."
            )
        try:
            exists = target.exists() or target.is_symlink()
        except OSError as error:
            raise CommandError(f"Cannot use {target}: {error.strerror or type(error).__name__}.") from None
        if exists:
            raise CommandError(
                f"{target} already exists: give the path of a new file (this command never overwrites a key)."
            )
        pem = generate_rsa_private_key_pem()
        try:
            write_private_file(target, pem)
            written = target.read_text()
        except OSError as error:
            raise CommandError(
                f"Cannot write the new key to {target}: {error.strerror or type(error).__name__}."
            ) from None
        if written != pem:  # another program created the file at the same moment: theirs was kept
            raise CommandError(f"{target} was created by another program meanwhile and was left alone: use a new path.")
        return target, pem

    def show(self, config: Configuration) -> None:
        self.say(f"Signing:   kid {config.signing.kid}  {config.describe_signing()}")
        seen = {config.signing.kid}
        for key in config.published:
            if key.kid in seen:
                note = "listed again in OIDC_RSA_INACTIVE_KEY_FILES, published once"
                self.say(f"           kid {key.kid}  {key.path}  ({note})")
                continue
            seen.add(key.kid)
            self.say(f"Published: kid {key.kid}  {key.path}  (OIDC_RSA_INACTIVE_KEY_FILES: verifies, does not sign)")

    def plan(self, config: Configuration, target: Path, new_kid: str, *, cache_seconds: int) -> None:
        new = str(target)
        others = config.other_published_paths()
        old = config.signing.path or str(target.parent / SAVED_OLD_KEY_NAME)
        id_token_seconds = oauth2_settings.ID_TOKEN_EXPIRE_SECONDS
        token_seconds = max(id_token_seconds, LOGOUT_TOKEN_SECONDS) + SITES_CLOCK_SKEW_SECONDS
        wait = token_seconds + cache_seconds
        jwks = f"{oauth2_settings.OIDC_ISS_ENDPOINT or settings.OIDC_ISSUER}/.well-known/jwks.json"
        say = self.say

        say(
            paragraph(
                "Roll it out in three steps. After each change, restart every IdP process (each web replica, and "
                "each back-channel worker: it signs logout tokens too) before the next step. They may restart "
                "one at a time: tokens signed with either key verify all along.",
                indent="",
            )
        )
        say("")
        say("Step 1 of 3: publish the new key; the current key still signs.")
        if config.source == TEXT:
            say("    # OIDC_RSA_PRIVATE_KEY: unchanged")
        else:
            say(assignment(FILE, old, "unchanged" if config.source == FILE else "the generated key, now named"))
        say(assignment("OIDC_RSA_INACTIVE_KEY_FILES", [*others, new]))
        say(
            paragraph(
                f"Go on once every IdP process publishes kid {new_kid} at {jwks}. The sites fetch a key they have "
                "not seen at once; a relying party that keeps the JWKS for its max-age "
                f"({oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS} s) without fetching it again for an unknown kid "
                "needs that long first."
            )
        )
        say("")
        say("Step 2 of 3: sign with the new key; the old one stays published.")
        if config.source == TEXT:
            say(
                paragraph(
                    "First save the old key, the PEM text of OIDC_RSA_PRIVATE_KEY, to a file only the IdP's user "
                    f"can read, say {old}: only key files can stay published. Then:"
                )
            )
            say(assignment(TEXT, "", "remove it: it takes precedence over the file"))
        say(assignment(FILE, new))
        say(assignment("OIDC_RSA_INACTIVE_KEY_FILES", [*others, old]))
        say("")
        say(f"Step 3 of 3, at least {wait} s after step 2 reached every IdP process: retire the old key.")
        say(assignment(FILE, new, "unchanged"))
        say(assignment("OIDC_RSA_INACTIVE_KEY_FILES", others))
        say(
            paragraph(
                f"{wait} s ({wait / 60:.0f} minutes): the longest a token signed with the old key is still "
                f"checked, {token_seconds} s (ID tokens live {id_token_seconds} s, logout tokens "
                f"{LOGOUT_TOKEN_SECONDS} s, and the sites allow {SITES_CLOCK_SKEW_SECONDS} s of clock difference), "
                f"plus the sites' SSO_METADATA_CACHE_SECONDS ({cache_seconds} s; --sites-metadata-cache-seconds "
                "if yours differs). A site keeps accepting the old key until its cached JWKS expires, up to "
                "SSO_METADATA_CACHE_SECONDS after this step."
            )
        )
        say(
            paragraph(
                "A client that keeps its ID token to send back as id_token_hint (the sites send logout_hint "
                "instead) has such a hint refused once the old key is retired: to spare it, wait the IdP "
                f"session's lifetime, IDP_SESSION_SECONDS ({settings.SESSION_COOKIE_AGE} s), instead."
            )
        )
        if others:
            say(paragraph(f"The keys retired before ({', '.join(others)}) stay listed: drop each when its time is up."))
        say(paragraph(f"Then delete the old key file, {old}, or keep it offline."))
