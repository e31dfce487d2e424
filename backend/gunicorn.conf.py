"""Gunicorn settings for the Procfile's `web` process (tunable through the environment)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Imported once in the master so workers share settings, routes and the schema (copy-on-write).
preload_app = True
accesslog = None
# Large enough for any real JWT, so an oversized token reaches the API and gets its 401 problem.
limit_request_field_size = 32768
