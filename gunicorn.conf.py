"""gunicorn settings shared by the IdP and the client sites (local runs, tests and compose.yaml)."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = 30
graceful_timeout = 10
control_socket_disable = True  # several servers run side by side on one machine
accesslog = "-"
# The path only, never the query string: a sign-in callback's query carries the authorization code.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Load the application once, in the master: workers share its memory, and an application that
# refuses to start (no Redis, a missing secret) stops gunicorn with its own one-line message.
preload_app = True
