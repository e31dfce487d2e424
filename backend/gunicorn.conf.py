"""Gunicorn settings for the Procfile's `web` process (tunable through the environment)."""

import os
import shutil
import tempfile

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
# Request lines up to 8 KiB (gunicorn's ceiling: 8190 bytes + CRLF) reach the API, so an
# over-long query value gets its problem+json (422, or 400 for a cursor), not gunicorn's HTML.
limit_request_line = 8190

# --- Balance between the worker processes ---------------------------------------------------
# A gthread worker keeps each keep-alive connection it accepted, so with one shared listening
# socket a client that opens its connections at once (a proxy's pool) can land them all in one
# process. Two settings spread them (docs/performance.md, "Balance between web processes"):
# 1. One listening socket per worker (SO_REUSEPORT; WEB_REUSE_PORT=0 turns it off): the kernel
#    assigns connections by a hash of their addresses, not by which worker is awake.
reuse_port = os.environ.get("WEB_REUSE_PORT", "1").strip().lower() not in {"0", "false", "no"}
# 2. At most WEB_KEEPALIVE_REQUESTS requests per keep-alive connection (0: no bound): the last
#    response says `Connection: close` and the reconnect is assigned afresh, so an uneven first
#    draw evens out. 100 is nginx's former default for the same setting (keepalive_requests).
KEEPALIVE_REQUESTS = int(os.environ.get("WEB_KEEPALIVE_REQUESTS", "100"))

# Before reusing a keep-alive connection gunicorn drains at most this much of a body the
# application left unread (gunicorn.http.parser._DRAIN_MAX_BYTES), and closes it otherwise.
_DRAIN_LIMIT = 64 * 1024


def pre_request(worker: object, req: object) -> None:
    """Announce `Connection: close` on the connection's KEEPALIVE_REQUESTS-th response (the
    balance between workers, above), and on a response to a large or chunked body.

    The API refuses a body over 1 MiB with a 413 before reading it. Gunicorn would then answer
    "keep-alive" and close the socket anyway (the unread body is over its drain limit), so the
    client's next request on the connection failed as "server disconnected". Marking the request
    makes gunicorn send `Connection: close` and close gracefully. Bodies this large are never
    legitimate API requests, so closing after one that was read costs nothing real.
    """
    worker.log.debug("%s %s", req.method, req.path)  # type: ignore[attr-defined]
    # req_number counts the requests parsed on this connection, from 1 (gunicorn's parser).
    if 0 < KEEPALIVE_REQUESTS <= req.req_number:  # type: ignore[attr-defined]
        req.must_close = True  # type: ignore[attr-defined]
        return
    for name, value in req.headers:  # type: ignore[attr-defined]
        if name == "TRANSFER-ENCODING" or (
            name == "CONTENT-LENGTH" and value.strip().isdigit() and int(value) > _DRAIN_LIMIT
        ):
            req.must_close = True  # type: ignore[attr-defined]
            return


# --- Prometheus multiprocess mode -------------------------------------------------------------
# Each worker process writes its metric values to files in PROMETHEUS_MULTIPROC_DIR and /metrics
# sums them, so a scrape answered by any worker reports the totals of all. The variable must be
# set before prometheus_client is first imported (it picks its value store at import), that is
# here, before the preloaded app loads. Unset: a fresh directory of our own, removed at exit.
_TEMP_DIR_MARKER = "DUKA_WEB_METRICS_TEMP_DIR"  # ours to remove at exit (survives a SIGHUP reload)
_configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _configured:
    _configured = os.environ[_TEMP_DIR_MARKER] = tempfile.mkdtemp(prefix="duka-web-metrics-")
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = _configured
os.makedirs(METRICS_DIR, exist_ok=True)


def _wipe_metrics_dir() -> None:
    """Counters of an earlier run (a restarted container keeps its volume) must not leak in."""
    for name in os.listdir(METRICS_DIR):
        if name.endswith(".db"):
            os.remove(os.path.join(METRICS_DIR, name))


def on_starting(server: object) -> None:
    # Runs once in the master, before any worker forks (the preloaded app's master-side files
    # go too: the master never serves, so it never counts).
    _wipe_metrics_dir()


def child_exit(server: object, worker: object) -> None:
    """A worker is gone: drop its live gauges; its counters stay and keep counting in totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    if os.environ.get(_TEMP_DIR_MARKER) == METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
