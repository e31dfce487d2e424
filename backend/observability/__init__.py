"""Request ids, structured logs, Prometheus metrics and Sentry: what operators see of the service.

`context` holds the request id of the current request or job; `logging` formats log records as
one JSON object per line; `middleware` logs one line per request; `jobs` does the same per
Dramatiq message; `metrics` holds the web's own metrics and the `/metrics` view; `sentry`
starts error reporting when SENTRY_DSN is set.
"""
