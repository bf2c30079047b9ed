"""Rotating the signing key: `manage.py rotate_signing_key`, and the JWKS and tokens during a rotation."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from django.urls import reverse
from jwcrypto import jwk, jwt

from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file
from provider import backchannel
from provider.id_token_hint import HintInvalid, id_token_hint_claims
from provider.models import LoginSession
from provider.signing import key_id
from tests.idp.flows import world_make
from tests.rotation_steps import printed_steps

KEY_VARIABLES = ("OIDC_RSA_PRIVATE_KEY", "OIDC_RSA_PRIVATE_KEY_FILE", "OIDC_RSA_INACTIVE_KEY_FILES")


@pytest.fixture
def keys(tmp_path, monkeypatch):
    """An IdP signing with k1.pem that still publishes retired.pem; a `keys.make(name)` for more."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    class Keys:
        folder = tmp_path

        @staticmethod
        def make(name: str) -> str:
            path = tmp_path / name
            write_private_file(path, generate_rsa_private_key_pem())
            return str(path)

    Keys.signing, Keys.retired = Keys.make("k1.pem"), Keys.make("retired.pem")
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY_FILE", Keys.signing)
    monkeypatch.setenv("OIDC_RSA_INACTIVE_KEY_FILES", Keys.retired)
    return Keys


def run(*args: str) -> str:
    out = StringIO()
    call_command("rotate_signing_key", *args, stdout=out)
    return out.getvalue()


def kid_of(path: str) -> str:
    with open(path) as handle:
        return key_id(handle.read())


def test_the_new_key_is_written_for_its_owner_only_and_never_printed(keys):
    new = keys.folder / "next" / "k2.pem"
    output = run(str(new))
    pem = new.read_text()
    assert "PRIVATE KEY" in pem and new.stat().st_mode & 0o077 == 0
    assert "PRIVATE KEY" not in output
    assert not any(line in output for line in pem.splitlines()[1:-1]), "no line of the key is printed"
    assert f"New key:   kid {kid_of(str(new))}" in output
    assert f"Signing:   kid {kid_of(keys.signing)}" in output


def test_the_three_steps_name_the_exact_values(keys):
    new = str(keys.folder / "k2.pem")
    output = run(new)
    publish, sign, retire = printed_steps(output)
    assert publish == {
        "OIDC_RSA_PRIVATE_KEY_FILE": keys.signing,
        "OIDC_RSA_INACTIVE_KEY_FILES": f"{keys.retired},{new}",
    }
    assert sign == {"OIDC_RSA_PRIVATE_KEY_FILE": new, "OIDC_RSA_INACTIVE_KEY_FILES": f"{keys.retired},{keys.signing}"}
    assert retire == {"OIDC_RSA_PRIVATE_KEY_FILE": new, "OIDC_RSA_INACTIVE_KEY_FILES": keys.retired}
    # With the defaults: ID tokens 300 s, logout tokens 120 s, 60 s of skew, the sites' JWKS cached 3600 s.
    assert "Step 3 of 3, at least 3960 s after step 2 reached every IdP process" in output
    assert "restart every IdP process" in output and "back-channel worker" in output
    assert f"publishes kid {kid_of(new)}" in output
    assert f"The keys retired before ({keys.retired}) stay listed" in " ".join(output.split())


def test_the_waiting_time_follows_the_sites_cache_time(keys):
    output = run(str(keys.folder / "k2.pem"), "--sites-metadata-cache-seconds", "60")
    assert "at least 420 s after step 2" in output


def test_a_key_given_as_text_must_be_saved_to_a_file_to_stay_published(keys, monkeypatch):
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY_FILE")
    monkeypatch.delenv("OIDC_RSA_INACTIVE_KEY_FILES")
    with open(keys.signing) as handle:
        monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY", handle.read())
    new = str(keys.folder / "k2.pem")
    output = run(new)
    assert "the PEM text in OIDC_RSA_PRIVATE_KEY" in output
    saved = str(keys.folder / "previous-signing-key.pem")
    assert f"to a file only the IdP's user can read, say {saved}" in " ".join(output.split())
    publish, sign, retire = printed_steps(output)
    assert publish == {"OIDC_RSA_INACTIVE_KEY_FILES": new}
    assert "# OIDC_RSA_PRIVATE_KEY: unchanged" in output
    assert sign == {"OIDC_RSA_PRIVATE_KEY": "", "OIDC_RSA_PRIVATE_KEY_FILE": new, "OIDC_RSA_INACTIVE_KEY_FILES": saved}
    assert "takes precedence" in output
    assert retire == {"OIDC_RSA_PRIVATE_KEY_FILE": new, "OIDC_RSA_INACTIVE_KEY_FILES": ""}


def test_the_generated_local_key_of_a_developer_machine_is_named(keys, monkeypatch, settings, tmp_path):
    monkeypatch.delenv("OIDC_RSA_PRIVATE_KEY_FILE")
    monkeypatch.delenv("OIDC_RSA_INACTIVE_KEY_FILES")
    settings.DEBUG, settings.LOCAL_DIR = True, tmp_path / "local"
    local = keys.make("local/oidc_rsa_private_key.pem")
    new = str(keys.folder / "k2.pem")
    publish, sign, _ = printed_steps(run(new))
    assert publish == {"OIDC_RSA_PRIVATE_KEY_FILE": local, "OIDC_RSA_INACTIVE_KEY_FILES": new}
    assert sign == {"OIDC_RSA_PRIVATE_KEY_FILE": new, "OIDC_RSA_INACTIVE_KEY_FILES": local}


def test_an_existing_file_is_never_overwritten(keys):
    with open(keys.retired) as handle:
        before = handle.read()
    with pytest.raises(CommandError, match="already exists") as refused:
        run(keys.retired)
    with open(keys.retired) as handle:
        assert handle.read() == before
    assert "\n" not in str(refused.value)


def test_a_folder_that_cannot_be_written_is_one_clear_line(keys):
    not_a_folder = keys.folder / "notes.txt"
    not_a_folder.write_text("hello")
    with pytest.raises(CommandError, match="Cannot write the new key to") as refused:
        run(str(not_a_folder / "k2.pem"))
    assert "\n" not in str(refused.value)
    assert sorted(path.name for path in keys.folder.iterdir()) == ["k1.pem", "notes.txt", "retired.pem"]


@pytest.mark.parametrize(
    ("args", "why"),
    [((), "Give the path"), (("--show", "k2.pem"), "--show writes no key"), (("a,b.pem",), "comma")],
)
def test_what_the_command_refuses(keys, args, why):
    with pytest.raises(CommandError, match=why):
        run(*args)


def test_show_names_the_signing_key_and_each_published_one(keys, monkeypatch):
    monkeypatch.setenv("OIDC_RSA_INACTIVE_KEY_FILES", f"{keys.retired},{keys.signing}")
    lines = run("--show").splitlines()
    assert lines[0] == f"Signing:   kid {kid_of(keys.signing)}  OIDC_RSA_PRIVATE_KEY_FILE={keys.signing}"
    assert lines[1].startswith(f"Published: kid {kid_of(keys.retired)}  {keys.retired}")
    assert "published once" in lines[2] and kid_of(keys.signing) in lines[2]
    assert len(lines) == 3


# --- the IdP during a rotation -------------------------------------------------------------------
def pem_of(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def other_encoding(pem: str) -> str:
    """The same key in PKCS#1 ("BEGIN RSA PRIVATE KEY") rather than PKCS#8."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def configure(settings):
    """Configure the IdP as its settings would, from these PEM texts: one signing, the others published."""

    def configure(signing: str, *published: str) -> None:
        settings.OAUTH2_PROVIDER = {
            **settings.OAUTH2_PROVIDER,
            "OIDC_RSA_PRIVATE_KEY": signing,
            "OIDC_RSA_PRIVATE_KEYS_INACTIVE": list(published),
        }

    return configure


@pytest.mark.django_db
def test_every_published_key_is_in_the_jwks_once_and_tokens_name_the_signing_key(client, keys, configure):
    new = keys.make("k2.pem")
    world = world_make(client)
    world.sign_in()

    def published_kids() -> list[str]:
        return [key["kid"] for key in client.get(reverse("oauth2_provider:jwks-info")).json()["keys"]]

    def signed_by(token: str) -> str:
        kid = jwt.JWT(jwt=token).token.jose_header["kid"]
        keyset = jwk.JWKSet.from_json(client.get(reverse("oauth2_provider:jwks-info")).content)
        jwt.JWT(jwt=token, key=keyset)  # verifies against the published key of that kid
        return kid

    # Step 1: the new key published, not signing. A key listed again (the signing one, the new one
    # in another encoding) is published once.
    configure(pem_of(keys.signing), pem_of(new), pem_of(keys.signing), other_encoding(pem_of(new)))
    assert published_kids() == [kid_of(keys.signing), kid_of(new)]
    assert signed_by(world.tokens()["id_token"]) == kid_of(keys.signing)

    # Step 2: the new key signs ID tokens and logout tokens; the old one is still published.
    configure(pem_of(new), pem_of(keys.signing))
    assert published_kids() == [kid_of(new), kid_of(keys.signing)]
    assert signed_by(world.tokens()["id_token"]) == kid_of(new)
    logout = backchannel.logout_token(world.application, LoginSession.objects.get(user=world.user))
    assert signed_by(logout) == kid_of(new)


def test_an_id_token_hint_of_the_old_key_verifies_until_the_key_is_retired(keys, configure, settings):
    old_key = jwk.JWK.from_pem(pem_of(keys.signing).encode())
    hint = jwt.JWT(
        header={"alg": "RS256", "kid": old_key.thumbprint()},
        claims={"iss": settings.OIDC_ISSUER, "sub": "someone", "aud": "site-a"},
    )
    hint.make_signed_token(old_key)
    new = pem_of(keys.make("k2.pem"))
    configure(new, pem_of(keys.signing))
    assert id_token_hint_claims(hint.serialize(), issuer=settings.OIDC_ISSUER)["sub"] == "someone"
    configure(new)
    with pytest.raises(HintInvalid, match="not signed by this provider"):
        id_token_hint_claims(hint.serialize(), issuer=settings.OIDC_ISSUER)
