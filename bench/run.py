"""Duka's in-repo benchmark: the production processes under wrk, at 10,000 and 1,000,000 orders.

    uv run python bench/run.py            # full run (~10 min on 2 cores)
    uv run python bench/run.py --quick    # smoke run (~3 min): shorter runs, 100,000 orders
    uv run python bench/run.py --floor    # also the reads' floors (docs/performance.md, 31)

What it does, in order (docs/performance.md explains the figures and the targets):
1. Installs wrk from Debian's packages when missing; starts PostgreSQL/Redis on 127.0.0.1 when
   they are down (as .ci/run does).
2. Creates the database `duka_bench` (`--db-name`; dropped again at the end) and flushes Redis
   DB 15 (`--redis-db`).
3. Starts a loopback Africa's Talking gateway (bench/gateway.py), runs the Procfile's `release`,
   then its `web` and `worker` commands with production settings (DJANGO_DEBUG off, a generated
   OIDC_RSA_PRIVATE_KEY, PROMETHEUS_MULTIPROC_DIR as in the image), so SMS really flow.
4. `manage.py createclient` + `POST /o/token/` for a bearer token (refreshed before each run).
5. For each size: `manage.py seed`, then wrk (concurrency 32) against /healthz, the reads and
   POST /api/v1/orders/, waiting for the outbox to drain after the writes. After the last size:
   a 60 s order burst while the pending outbox count is sampled every second, then the drain.
6. Writes bench/results/<stamp>.json and .md (req/s, p50, p99, errors, web and worker RSS, CPU
   per request and per web process, CPU per order, the targets of issue 11 with their measured
   ratios), with the core count and the date. Exit status 1 when a target is missed.

Every address is 127.0.0.1; every wait is bounded; every process it starts is stopped on exit.
The code is in bench/duka_bench/ (one module per reason to change; see its __init__).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/run.py` puts bench/ on sys.path already; this also covers other ways to run it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from duka_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
