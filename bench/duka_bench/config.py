"""What every part of the bench shares: paths, the fixed load parameters, the run's options."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "wrk" / "api.lua"
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", f"postgres://postgres@{HOST}:5432/postgres")
DB_NAME = "duka_bench"  # default of --db-name
REDIS_DB = 15  # default of --redis-db: flushed at start and end; the tests and dev use others
CONCURRENCY = 32
WRK_THREADS = 2
SCOPES = "customers:read customers:write orders:read orders:write"
AT_USERNAME = "duka-bench"
# A run during which work this bench did not start used more than this share of the machine
# is measured again (up to --retries times per bench run); the least disturbed attempt counts.
OTHER_CPU_LIMIT = 10.0
QUIET_WAIT_SECONDS = 30.0
# Bound on every wait for the SMS outbox to drain after a write run.
DRAIN_WAIT_SECONDS = 300.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Options:
    sizes: list[int]
    seconds: float
    warmup: float
    burst_seconds: float
    only: set[str] | None
    web_env: dict[str, str]
    web_cmd: str | None
    label: str
    quick: bool
    keep_db: bool
    profile: set[str]
    serve: float
    retry_budget: int
    calibrate: float = 0.0
    db_name: str = DB_NAME
    redis_db: int = REDIS_DB
    floor: bool = False
    results: dict[str, Any] = field(default_factory=dict)
