# One image for every process of the product: the IdP, client sites A and B (gunicorn), the
# back-channel logout worker, housekeeping, and the one-shot migrate and seed jobs. compose.yaml
# picks the process with `working_dir` and `command`; docs/deploy.md explains the whole stack.
#
#   docker build -t sso .      (compose.yaml builds it itself: `docker compose up --wait --build`)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The project's one lock, as `make` installs it; then sso_client, the app the two sites use.
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY sso_client/ sso_client/
RUN pip install --no-deps --no-build-isolation ./sso_client && rm -rf sso_client

COPY gunicorn.conf.py ./
COPY idp/ idp/
COPY client_site_a/ client_site_a/
COPY client_site_b/ client_site_b/
COPY deploy/ deploy/

# Static files of all three sites, collected once here and served by whitenoise: compose.yaml
# sets each web service's STATIC_ROOT to its folder under /app/static.
RUN sh deploy/collectstatic.sh /app/static

# Run as a user of its own, owning nothing: the code and the static files are root's, read-only.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sso
USER 10001:10001

# The IdP, site A and site B listen on these in compose.yaml (BIND, gunicorn.conf.py). Without a
# command of compose.yaml's, the image serves the IdP.
EXPOSE 8000 8001 8002
WORKDIR /app/idp
ENV BIND=0.0.0.0:8000
CMD ["gunicorn", "-c", "/app/gunicorn.conf.py", "idp_server.wsgi"]
