#!/bin/sh
# Collect the static files of the IdP and of both sites into STATIC_DIR/idp, STATIC_DIR/site_a and
# STATIC_DIR/site_b, as production serves them: whitenoise's compressed, hashed files and their
# manifest, which only DJANGO_DEBUG=0 writes. The Dockerfile runs it at build time (compose.yaml
# gives each web service its STATIC_ROOT there); tests/e2e/test_compose.py runs it too.
#
#   sh deploy/collectstatic.sh STATIC_DIR     (from the repository's top folder)
#
# The production settings refuse to load without a secret key, a signing key and the client
# secrets. Collecting static files uses none of them, so throwaway ones are made up for this one
# command and forgotten with it: nothing secret is written into the image.
set -eu
static_dir="${1:?usage: sh deploy/collectstatic.sh STATIC_DIR}"
case "$static_dir" in /*) ;; *) static_dir="$(pwd)/$static_dir" ;; esac
throwaway() { python -c 'import secrets; print("build-only-" + secrets.token_urlsafe(32))'; }

export DJANGO_DEBUG=0
DJANGO_SECRET_KEY="$(throwaway)"
SITE_A_CLIENT_SECRET="$(throwaway)"
SITE_B_CLIENT_SECRET="$(throwaway)"
OIDC_RSA_PRIVATE_KEY="$(cd idp && python -c 'from idp_server.signing_key import generate_rsa_private_key_pem as g; print(g())')"
export DJANGO_SECRET_KEY SITE_A_CLIENT_SECRET SITE_B_CLIENT_SECRET OIDC_RSA_PRIVATE_KEY

for site in idp:idp client_site_a:site_a client_site_b:site_b; do
    folder="${site%%:*}"
    name="${site#*:}"
    (cd "$folder" && STATIC_ROOT="$static_dir/$name" python manage.py collectstatic --no-input --clear -v0)
done
