"""Client secrets use the fast hasher; people's passwords keep the slow one."""

from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from provider.hashers import ClientSecretHasher


def test_a_client_secret_verifies_and_a_wrong_one_does_not():
    encoded = make_password("s3cret-value", hasher="client_secret_sha256")
    assert "s3cret-value" not in encoded
    assert check_password("s3cret-value", encoded)
    assert not check_password("s3cret-valuf", encoded)


def test_the_same_secret_hashes_differently_each_time():
    assert make_password("same", hasher="client_secret_sha256") != make_password("same", hasher="client_secret_sha256")


def test_people_passwords_do_not_use_the_client_secret_hasher(settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "provider.hashers.ClientSecretHasher",
    ]
    assert identify_hasher(make_password("a person's password")).algorithm == "pbkdf2_sha256"


def test_the_summary_shown_in_the_admin_hides_the_hash():
    encoded = make_password("secret", hasher="client_secret_sha256")
    summary = ClientSecretHasher().safe_summary(encoded)
    assert encoded.split("$")[2] not in str(summary.values())
