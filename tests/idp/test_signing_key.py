"""The signing key is configuration; only a developer's machine gets a generated one."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from idp_server.signing_key import generate_rsa_private_key_pem, load_signing_keys


@pytest.fixture
def no_key_env(monkeypatch):
    for name in ("OIDC_RSA_PRIVATE_KEY", "OIDC_RSA_PRIVATE_KEY_FILE", "OIDC_RSA_INACTIVE_KEY_FILES"):
        monkeypatch.delenv(name, raising=False)


def test_production_without_a_key_refuses_and_names_the_variables(tmp_path, no_key_env):
    with pytest.raises(ImproperlyConfigured, match="OIDC_RSA_PRIVATE_KEY"):
        load_signing_keys(local_dir=tmp_path, debug=False)
    assert not list(tmp_path.iterdir()), "no key may be generated outside a developer's machine"


def test_debug_generates_one_local_key_and_keeps_it(tmp_path, no_key_env):
    first, _ = load_signing_keys(local_dir=tmp_path, debug=True)
    second, _ = load_signing_keys(local_dir=tmp_path, debug=True)
    assert "PRIVATE KEY" in first
    assert first == second
    key_file = next(tmp_path.iterdir())
    assert key_file.stat().st_mode & 0o077 == 0, "the key file must be readable by its owner only"


def test_key_from_the_environment_wins(tmp_path, monkeypatch, no_key_env):
    pem = generate_rsa_private_key_pem()
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY", pem)
    assert load_signing_keys(local_dir=tmp_path, debug=False)[0] == pem


def test_key_file_and_retired_keys(tmp_path, monkeypatch, no_key_env):
    active, retired = tmp_path / "active.pem", tmp_path / "retired.pem"
    active.write_text(generate_rsa_private_key_pem())
    retired.write_text(generate_rsa_private_key_pem())
    monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY_FILE", str(active))
    monkeypatch.setenv("OIDC_RSA_INACTIVE_KEY_FILES", str(retired))
    key, inactive = load_signing_keys(local_dir=tmp_path, debug=False)
    assert key == active.read_text()
    assert inactive == [retired.read_text()]


@pytest.mark.parametrize("variable", ["OIDC_RSA_PRIVATE_KEY_FILE", "OIDC_RSA_INACTIVE_KEY_FILES"])
def test_unreadable_or_wrong_key_file_names_the_variable(tmp_path, monkeypatch, no_key_env, variable):
    if variable == "OIDC_RSA_INACTIVE_KEY_FILES":
        good = tmp_path / "good.pem"
        good.write_text(generate_rsa_private_key_pem())
        monkeypatch.setenv("OIDC_RSA_PRIVATE_KEY_FILE", str(good))
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    monkeypatch.setenv(variable, str(not_a_key))
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_signing_keys(local_dir=tmp_path, debug=False)
    monkeypatch.setenv(variable, str(tmp_path / "missing.pem"))
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_signing_keys(local_dir=tmp_path, debug=False)
