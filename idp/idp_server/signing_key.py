"""Where the IdP's ID-token signing keys come from: configuration, never generated per process.

Every replica must sign and verify alike, so the key is an environment variable (the PEM text in
OIDC_RSA_PRIVATE_KEY, or a path in OIDC_RSA_PRIVATE_KEY_FILE). Keys retired by a rotation go in
OIDC_RSA_INACTIVE_KEY_FILES (paths separated by commas): they stay in the JWKS so that tokens they
signed still verify. A new key is listed there too for a while before it signs, so that every
replica publishes it first (`manage.py rotate_signing_key`, docs/scaling.md). Only on a
developer's machine (DEBUG on, nothing set) is a local key generated, once, and kept under the
ignored local folder so restarts keep tokens verifiable.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

LOCAL_KEY_NAME = "oidc_rsa_private_key.pem"


def generate_rsa_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()


def write_private_file(path: Path, text: str) -> None:
    """Write `text` readable by the owner only, atomically, so two starting processes agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        os.link(tmp, path)  # fails if another process got there first: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def read_key_file(path: str | Path, variable: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ImproperlyConfigured(f"{variable}: cannot read the key file {path}: {error.strerror}.") from None
    if "PRIVATE KEY" not in text:
        raise ImproperlyConfigured(f"{variable}: {path} is not a PEM private key.")
    return text


def inactive_key_paths() -> list[str]:
    """The paths OIDC_RSA_INACTIVE_KEY_FILES lists, in order (blanks left out)."""
    return [path.strip() for path in os.environ.get("OIDC_RSA_INACTIVE_KEY_FILES", "").split(",") if path.strip()]


def load_signing_keys(*, local_dir: Path, debug: bool) -> tuple[str, list[str]]:
    """Return the active signing key and the retired ones still published, as PEM texts."""
    inactive = [read_key_file(path, "OIDC_RSA_INACTIVE_KEY_FILES") for path in inactive_key_paths()]
    if pem := os.environ.get("OIDC_RSA_PRIVATE_KEY"):
        if "PRIVATE KEY" not in pem:
            raise ImproperlyConfigured("OIDC_RSA_PRIVATE_KEY does not hold a PEM private key.")
        return pem, inactive
    if path := os.environ.get("OIDC_RSA_PRIVATE_KEY_FILE"):
        return read_key_file(path, "OIDC_RSA_PRIVATE_KEY_FILE"), inactive
    if not debug:
        raise ImproperlyConfigured(
            "Set OIDC_RSA_PRIVATE_KEY or OIDC_RSA_PRIVATE_KEY_FILE: the ID-token signing key must be "
            "configuration when DJANGO_DEBUG is off."
        )
    local_key = local_dir / LOCAL_KEY_NAME
    if not local_key.exists():
        write_private_file(local_key, generate_rsa_private_key_pem())
    return local_key.read_text(), inactive
