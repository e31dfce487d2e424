"""Duka's soak: mixed load on the real processes while faults are injected one after another,
then a ledger reconciled against the database (docs/operate.md, "Soak").

    uv run python bench/soak.py --short          # <= 3 min, scaled timings (CI runs it)
    uv run python bench/soak.py --minutes 15     # production timings, longer faults

It starts its own services on free loopback ports, never the machine's shared ones: a
PostgreSQL primary with a synchronous hot standby behind a loopback TCP proxy (the service's
DATABASE_URL), a Redis without persistence, a loopback Africa's Talking (tests/fixtures/
gateway.py) and two webhook receivers (tests/fixtures/receiver.py) subscribed to the order
events; then the Procfile's `release`, `web` and `worker` commands with production settings
(bench/soak_settings.py scales their delivery timings by --time-scale).

Load: threads placing orders with Idempotency-Keys (retried with the same key until answered,
as a careful client does), reading orders and listing them. Faults, in this order, each
followed by healthy load: the primary failing over to the promoted standby, Redis restarted
empty, the worker SIGKILLed while the gateway holds its send (then a new one started), the web
SIGKILLed and started again, the gateway answering 5xx / timing out / trickling, a receiver
down for a fifth of the run. After the load, a bounded drain of the outbox; then the ledger
(bench/soak_ledger.py), a table on stdout and bench/results/<stamp>-soak-<form>.json/.md.
Exit status 1 when the ledger does not reconcile. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import psycopg  # noqa: E402
import requests  # noqa: E402
from duka_bench.procs import Proc, Processes, free_port, git, procfile, run  # noqa: E402
from soak_cluster import Database, RedisServer  # noqa: E402
from soak_ledger import ORDER_ID, Attempt, Fault, Observed, reconcile, table  # noqa: E402

from tests.fixtures.gateway import FakeAfricasTalking, Reply, running_gateway  # noqa: E402
from tests.fixtures.receiver import Receiver  # noqa: E402

HOST = "127.0.0.1"
SCOPES = "customers:read customers:write orders:read orders:write webhooks:manage"
ITEM_PREFIX = "soak "
CUSTOMERS = 5
SHORT_LOAD_SECONDS = 90.0
SHORT_TIME_SCALE = 0.2
TOKEN_REFRESH_SECONDS = 300.0  # tokens live 15 min
TOKEN_RETRY_SECONDS = 10.0
START_SECONDS = 90.0
CLIENT_TIMEOUT = (3.05, 30.0)
RETRY_AFTER_CAP_SECONDS = 2.0
# The contract's bounds (sections 6 and 7), in production time; scaled with the timings.
DB_RECOVERY_SECONDS = 15.0
SWEEP_SECONDS = 60.0
REDELIVERY_SECONDS = 120.0
TIMINGS = (
    "SMS_GATEWAY_READ_TIMEOUT_SECONDS",
    "SMS_GATEWAY_DEADLINE_SECONDS",
    "SMS_RETRY_BASE_SECONDS",
    "SMS_CLAIM_LEASE_SECONDS",
    "DRAMATIQ_HEARTBEAT_TIMEOUT_SECONDS",
    "OUTBOX_REDELIVERY_GRACE_SECONDS",
    "IDEMPOTENCY_STALE_CLAIM_SECONDS",
    "WEBHOOK_RETRY_BASE_SECONDS",
)


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class Plan:
    """How long things last: the load, each fault, the receiver's outage, the gaps, the drain."""

    load: float
    scale: float
    threads: int
    rate: float  # requests per second over all threads

    @property
    def receiver_down(self) -> float:
        return 0.2 * self.load

    @property
    def fault(self) -> float:
        return min(60.0, max(5.0, 0.04 * self.load))

    @property
    def gap(self) -> float:
        return (self.load - self.receiver_down - 7 * self.fault) / 9

    @property
    def drain(self) -> float:
        return max(60.0, 0.35 * self.load)

    @property
    def post_budget(self) -> float:
        """How long one order's retries may go on (outlasts a stale idempotency claim)."""
        return max(45.0, 150.0 * self.scale)


@dataclass
class Clock:
    """Seconds since the load began: of the monotonic clock, or of a database timestamp."""

    t0: float = field(default_factory=time.monotonic)
    wall0: float = field(default_factory=time.time)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def of(self, monotonic: float) -> float:
        return monotonic - self.t0

    def of_wall(self, when: dt.datetime | None) -> float | None:
        return None if when is None else round(when.timestamp() - self.wall0, 2)


class Token:
    """A client-credentials token of the built-in issuer, refreshed well before it expires (a
    refresh that fails, e.g. while the database is away, keeps the old one a while longer)."""

    def __init__(self, base: str, client_id: str, client_secret: str) -> None:
        self.base, self.auth = base, (client_id, client_secret)
        self.lock = threading.Lock()
        self.value = self._fetch()
        if self.value is None:
            raise SystemExit("soak: no token from the built-in issuer")
        self.fetched = time.monotonic()

    def _fetch(self) -> str | None:
        with contextlib.suppress(requests.RequestException):
            response = requests.post(
                self.base + "/o/token/",
                data={"grant_type": "client_credentials", "scope": SCOPES},
                auth=self.auth,
                timeout=CLIENT_TIMEOUT,
            )
            if response.status_code == 200:
                return response.json()["access_token"]
        return None

    def header(self) -> dict[str, str]:
        with self.lock:
            due = time.monotonic() - self.fetched > TOKEN_REFRESH_SECONDS
            if due:  # this thread refreshes; the others use the old token meanwhile
                self.fetched += TOKEN_RETRY_SECONDS
            value = self.value
        if due and (fresh := self._fetch()) is not None:
            with self.lock:
                self.value, self.fetched = fresh, time.monotonic()
            value = fresh
        return {"Authorization": f"Bearer {value}"}


class Load:
    """The client side: threads of orders, reads and lists; every request goes in the ledger."""

    def __init__(
        self, base: str, token: Token, customers: list[int], plan: Plan, clock: Clock
    ) -> None:
        self.base, self.token, self.customers, self.plan, self.clock = (
            base,
            token,
            customers,
            plan,
            clock,
        )
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.answered: dict[str, int] = {}
        self.unresolved: list[str] = []
        self.stop = threading.Event()

    def request(
        self, session: requests.Session, kind: str, method: str, path: str, **kw: Any
    ) -> requests.Response | None:
        sent = self.clock.now()
        try:
            response = session.request(
                method,
                self.base + path,
                headers={**self.token.header(), **kw.pop("headers", {})},
                timeout=CLIENT_TIMEOUT,
                **kw,
            )
            attempt = Attempt(
                sent,
                self.clock.now(),
                kind,
                response.status_code,
                response.headers.get("Retry-After"),
            )
        except requests.RequestException as exc:
            response = None
            attempt = Attempt(sent, self.clock.now(), kind, 0, None, type(exc).__name__)
        with self.lock:
            self.attempts.append(attempt)
        return response

    def place_order(self, session: requests.Session, rng: random.Random) -> None:
        key = uuid.uuid4().hex[:16]
        body = {
            "customer_id": rng.choice(self.customers),
            "item": ITEM_PREFIX + key,
            "amount": f"{rng.randint(100, 99999) / 100:.2f}",
        }
        deadline = time.monotonic() + self.plan.post_budget
        while time.monotonic() < deadline:
            response = self.request(
                session,
                "order",
                "POST",
                "/api/v1/orders/",
                json=body,
                headers={"Idempotency-Key": key},
            )
            if response is not None and response.status_code == 201:
                with self.lock:
                    self.answered[key] = response.json()["id"]
                return
            if response is not None and response.status_code not in (409, 429, 503):
                break  # a final refusal: the ledger reports it
            wait = 0.5
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                wait = min(RETRY_AFTER_CAP_SECONDS, float(response.headers["Retry-After"]))
            time.sleep(wait)
        with self.lock:
            self.unresolved.append(key)

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        interval = self.plan.threads / self.plan.rate
        with requests.Session() as session:
            while not self.stop.is_set():
                began = time.monotonic()
                roll = rng.random()
                with self.lock:
                    ids = list(self.answered.values())
                if roll < 0.5 or not ids:
                    self.place_order(session, rng)
                elif roll < 0.8:
                    self.request(session, "get", "GET", f"/api/v1/orders/{rng.choice(ids)}/")
                else:
                    self.request(session, "list", "GET", "/api/v1/orders/?limit=20")
                time.sleep(max(0.0, interval - (time.monotonic() - began)))


@dataclass
class Services:
    procs: Processes
    env: dict[str, str]
    web: Proc
    worker: Proc
    base: str
    restarts: int = 0

    def start(self, name: str) -> Proc:
        self.restarts += 1
        command = procfile()[name]
        proc = self.procs.start(f"{name}-{self.restarts}", ["sh", "-c", command], self.env)
        setattr(self, name, proc)
        return proc

    def web_ready(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(self.base + "/healthz", timeout=2).status_code == 200
        return False

    def worker_ready(self) -> bool:
        return "Worker process is ready for action" in self.worker.log_path.read_text(
            errors="replace"
        )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def kill_group(proc: Proc) -> None:
    """SIGKILL the process and its children at once, as a lost node or an OOM kill does."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)


class Faults:
    """The faults, injected one after another by `run` in a thread of its own."""

    def __init__(
        self,
        plan: Plan,
        clock: Clock,
        db: Database,
        redis_server: RedisServer,
        services: Services,
        gateway: FakeAfricasTalking,
        receivers: dict[str, Receiver],
        timings: dict[str, float],
    ) -> None:
        self.plan, self.clock, self.db, self.redis = plan, clock, db, redis_server
        self.services, self.gateway, self.receivers, self.timings = (
            services,
            gateway,
            receivers,
            timings,
        )
        self.done: list[Fault] = []
        self.stop = threading.Event()

    def schedule(self) -> list[tuple[Fault, Callable[[Fault], None]]]:
        scale, read_timeout = self.plan.scale, self.timings["SMS_GATEWAY_READ_TIMEOUT_SECONDS"]
        deadline = self.timings["SMS_GATEWAY_DEADLINE_SECONDS"]
        return [
            (Fault("db_failover", "write", bound=DB_RECOVERY_SECONDS), self.db_failover),
            (
                Fault("redis_restart", "sms", bound=SWEEP_SECONDS * scale, bound_of="caught_up"),
                self.redis_restart,
            ),
            (Fault("receiver_down", "delivery:b"), self.receiver_down),
            (Fault("worker_kill", "sms"), self.worker_kill),
            (Fault("web_kill", "write"), self.web_kill),
            (Fault("gateway_5xx", "sms"), self.gateway_as(Reply(http_status=500))),
            (Fault("gateway_timeout", "sms"), self.gateway_as(Reply(delay=read_timeout + 2))),
            # Each byte well inside the read timeout, the whole body far past the deadline.
            (
                Fault("gateway_trickle", "sms"),
                self.gateway_as(Reply(trickle=min(read_timeout / 4, deadline / 20))),
            ),
        ]

    def run(self) -> None:
        self.stop.wait(self.plan.gap)
        for fault, inject in self.schedule():
            if self.stop.is_set():
                return
            log(f"fault: {fault.name}")
            fault.start = self.clock.now()
            try:
                inject(fault)
            except Exception as exc:  # reported by the ledger as a fault not injected
                fault.error = f"{type(exc).__name__}: {exc}"
                log(f"fault {fault.name} failed: {fault.error}")
            if not fault.end:
                fault.end = self.clock.now()
            self.done.append(fault)
            self.stop.wait(self.plan.gap)

    def db_failover(self, fault: Fault) -> None:
        self.db.fail_over(self.plan.fault)

    def redis_restart(self, fault: Fault) -> None:
        self.redis.restart(self.plan.fault)

    def receiver_down(self, fault: Fault) -> None:
        self.receivers["b"].down()
        self.stop.wait(self.plan.receiver_down)
        self.receivers["b"].up()

    def worker_kill(self, fault: Fault) -> None:
        """Hold every send at the gateway; once one is held, SIGKILL the worker mid-send."""
        read_timeout = self.timings["SMS_GATEWAY_READ_TIMEOUT_SECONDS"]
        before = len(self.gateway.requests)
        self.gateway.default = Reply(delay=0.8 * read_timeout)
        try:
            wait_until(lambda: len(self.gateway.requests) > before, 60, "a send to hold")
            time.sleep(0.1)
            fault.start = self.clock.now()
            kill_group(self.services.worker)
        finally:
            self.gateway.default = Reply()
        cut = self.gateway.requests[before:]
        fault.details["cut_orders"] = sorted(
            {int(m.group(1)) for r in cut if (m := ORDER_ID.search(r.form.get("message", "")))}
        )
        self.stop.wait(self.plan.fault)
        fault.end = self.clock.now()
        self.services.start("worker")
        wait_until(self.services.worker_ready, START_SECONDS, "the new worker")

    def web_kill(self, fault: Fault) -> None:
        kill_group(self.services.web)
        self.stop.wait(self.plan.fault)
        fault.end = self.clock.now()
        self.services.start("web")
        wait_until(self.services.web_ready, START_SECONDS, "the new web process")

    def gateway_as(self, reply: Reply) -> Callable[[Fault], None]:
        def inject(fault: Fault) -> None:
            fault.details["reply"] = repr(reply)
            self.gateway.default = reply
            try:
                self.stop.wait(self.plan.fault)
            finally:
                self.gateway.default = Reply()

        return inject


def service_env(
    db: Database, redis_server: RedisServer, gateway: FakeAfricasTalking, work: Path, scale: float
) -> dict[str, str]:
    """The processes' environment: production settings (soak_settings scales their timings)."""
    from backend.issuer.conf import generate_private_key_pem

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])),
        "DJANGO_SETTINGS_MODULE": "soak_settings",
        "SOAK_TIME_SCALE": str(scale),
        "PORT": str(port),
        "GUNICORN_CMD_ARGS": f"--bind {HOST}:{port}",
        "DATABASE_URL": db.url,
        "REDIS_URL": redis_server.url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "DUKA_PUBLIC_URL": f"http://{HOST}:{port}",
        "OIDC_RSA_PRIVATE_KEY": generate_private_key_pem(),
        "AFRICAS_TALKING_USERNAME": gateway.username,
        "AFRICAS_TALKING_API_KEY": gateway.api_key,
        "AFRICAS_TALKING_API_URL": gateway.url,
        "SMS_CALLBACK_TOKEN": secrets.token_urlsafe(32),
        "WEBHOOKS_ALLOW_PRIVATE": "1",
        # Production renices the worker so the web gets the CPU first; on a machine shared with
        # other work at nice 0 that starves it, and the soak would measure the neighbours.
        "WORKER_NICENESS": "0",
        "METRICS_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("TEST_DATABASE_URL", "SENTRY_DSN", "RATE_LIMIT_WRITES", "DATABASE_READ_URL"):
        env.pop(name, None)
    (work / "prometheus").mkdir(exist_ok=True)
    return env


def read_timings(env: dict[str, str]) -> dict[str, float]:
    """The timings the processes run with, read from their own settings module."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(TIMINGS)!r}}}))"
    )
    return json.loads(run([sys.executable, "-c", script], env=env, timeout=60).splitlines()[-1])


def make_customers(base: str, token: Token) -> list[int]:
    """The customers the orders are placed for (each a valid Kenyan mobile number)."""
    customers = []
    with requests.Session() as session:
        for n in range(CUSTOMERS):
            response = session.post(
                base + "/api/v1/customers/",
                json={
                    "name": f"Soak {n}",
                    "code": f"SOAK-{uuid.uuid4().hex[:8]}",
                    "phone_number": f"07{random.randint(10, 29)}{random.randint(0, 999999):06d}",
                },
                headers=token.header(),
                timeout=CLIENT_TIMEOUT,
            )
            if response.status_code != 201:
                raise SystemExit(
                    f"soak: creating a customer: {response.status_code} {response.text}"
                )
            customers.append(response.json()["id"])
    return customers


def subscribe(base: str, token: Token, receivers: dict[str, Receiver]) -> dict[int, str]:
    """Each receiver subscribed to the order events; returns receiver names by endpoint id."""
    endpoints = {}
    for name, receiver in receivers.items():
        response = requests.post(
            base + "/api/v1/webhooks/",
            json={"url": receiver.url, "events": ["order.created", "order.sms_status_changed"]},
            headers=token.header(),
            timeout=CLIENT_TIMEOUT,
        )
        if response.status_code != 201:
            raise SystemExit(f"soak: subscribing {name}: {response.status_code} {response.text}")
        endpoints[response.json()["id"]] = name
    return endpoints


def drain(db: Database, bound: float) -> float:
    """Wait (at most `bound` s) until the outbox has nothing pending; returns the time taken."""
    began = time.monotonic()
    query = (
        "SELECT (SELECT count(*) FROM sms_notifications WHERE status = 'pending')"
        " + (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')"
    )
    while time.monotonic() - began < bound:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(db.admin_url(), autocommit=True, connect_timeout=5) as conn,
        ):
            if conn.execute(query).fetchone()[0] == 0:
                break
        time.sleep(1)
    return time.monotonic() - began


def observe(
    load: Load,
    faults: list[Fault],
    db: Database,
    gateway: FakeAfricasTalking,
    receivers: dict[str, Receiver],
    endpoints: dict[int, str],
    clock: Clock,
) -> Observed:
    with psycopg.connect(db.admin_url(), autocommit=True, connect_timeout=5) as conn:
        orders = conn.execute(
            "SELECT o.id, o.item, s.status, s.gateway_message_id, s.error_reason, s.last_error,"
            " o.time, s.attempts, s.enqueued_at, s.broker_message_id"
            " FROM orders o JOIN sms_notifications s ON s.order_id = o.id"
            " WHERE o.item LIKE %s ORDER BY o.id",
            [ITEM_PREFIX + "%"],
        ).fetchall()
        events = conn.execute(
            "SELECT endpoint_id, event_id, event_type, subject, status, created_at, attempts,"
            " enqueued_at, broker_message_id FROM webhook_deliveries"
        ).fetchall()
    return Observed(
        attempts=list(load.attempts),
        answered=dict(load.answered),
        unresolved=list(load.unresolved),
        faults=faults,
        orders=[tuple(row[:6]) for row in orders],
        gateway=[
            (clock.of(r.at), r.form.get("message", ""), r.accepted, r.message_id)
            for r in list(gateway.requests)
        ],
        deliveries={
            name: [
                (clock.of(r.at), r.headers.get("webhook-id", ""), r.status) for r in rec.requests
            ]
            for name, rec in receivers.items()
        },
        outbox_events=[(endpoints.get(e[0], str(e[0])), *e[1:5]) for e in events],
        rows={
            **{f"order:{r[0]}": _row(clock, r[6], r[7], r[8], r[9]) for r in orders},
            **{
                f"{endpoints.get(e[0], e[0])}:{e[1]}": _row(clock, e[5], e[6], e[7], e[8])
                for e in events
            },
        },
        item_prefix=ITEM_PREFIX,
    )


def _row(
    clock: Clock, created: dt.datetime, attempts: int, enqueued: dt.datetime | None, message: str
) -> dict[str, Any]:
    """An outbox row's history, for the ledger's account of what did not arrive."""
    return {
        "created": clock.of_wall(created),
        "attempts": attempts,
        "enqueued": clock.of_wall(enqueued),
        "broker_message_id": message,
    }


class LoadSampler:
    """The machine's load average every 5 s: the soak shares its cores with whatever else runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, Any]:
        s = self.samples or [os.getloadavg()[0]]
        return {
            "cores": os.cpu_count(),
            "load1_mean": round(sum(s) / len(s), 2),
            "load1_max": round(max(s), 2),
        }


@contextlib.contextmanager
def receivers_up() -> Iterator[dict[str, Receiver]]:
    receivers = {"a": Receiver(), "b": Receiver()}
    try:
        yield receivers
    finally:
        for receiver in receivers.values():
            receiver.release()
            with contextlib.suppress(Exception):
                receiver.down()


def soak(plan: Plan, form: str, results_dir: Path, keep_logs: bool) -> int:
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="duka-soak-"))
    procs = Processes(work)
    db = Database()
    redis_server = RedisServer(work)
    sampler = LoadSampler()
    threading.Thread(target=sampler.run, daemon=True).start()
    ok = False
    try:
        with running_gateway() as gateway, receivers_up() as receivers:
            log(f"PostgreSQL primary :{db.primary.port}, standby :{db.standby.port}")
            db.start()
            redis_server.start()
            env = service_env(db, redis_server, gateway, work, plan.scale)
            timings = read_timings(env)
            log(f"timings (scale {plan.scale}): {timings}")
            run(["sh", "-c", procfile()["release"]], env=env, timeout=300)
            base = f"http://{HOST}:{env['PORT']}"
            services = Services(procs, env, web=None, worker=None, base=base)  # type: ignore[arg-type]
            services.start("web")
            services.start("worker")
            wait_until(services.web_ready, START_SECONDS, "the web process")
            wait_until(services.worker_ready, START_SECONDS, "the worker")
            credentials = json.loads(
                run(
                    [sys.executable, "manage.py", "createclient", "soak", "--scopes", SCOPES],
                    env=env,
                )
                .strip()
                .splitlines()[-1]
            )
            token = Token(base, credentials["client_id"], credentials["client_secret"])
            customers = make_customers(base, token)
            endpoints = subscribe(base, token, receivers)
            setup_seconds = time.monotonic() - began
            log(f"set up in {setup_seconds:.0f} s; load for {plan.load:.0f} s")

            clock = Clock()
            load = Load(base, token, customers, plan, clock)
            faults = Faults(plan, clock, db, redis_server, services, gateway, receivers, timings)
            threads = [
                threading.Thread(target=load.worker, args=(n,), daemon=True)
                for n in range(plan.threads)
            ]
            fault_thread = threading.Thread(target=faults.run, daemon=True)
            for thread in [*threads, fault_thread]:
                thread.start()
            # The load goes on until the last fault's gap is over (restarts make the faults run
            # longer than planned), so each fault has healthy load after it to recover with.
            fault_thread.join(plan.load + 10 * plan.fault + 2 * START_SECONDS)
            faults.stop.set()
            time.sleep(max(0.0, plan.load - clock.now()))
            load.stop.set()
            for thread in threads:  # each finishes the order it is placing
                thread.join(plan.post_budget + 30)
            log(f"load done at {clock.now():.0f} s; draining (at most {plan.drain:.0f} s)")
            drained = drain(db, plan.drain)
            log(f"drained in {drained:.0f} s")
            seen = observe(load, faults.done, db, gateway, receivers, endpoints, clock)
            ledger = reconcile(seen, redelivery_bound=REDELIVERY_SECONDS * plan.scale)
            sampler.stop.set()
            results = {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "form": form,
                "commit": git("rev-parse", "--short", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                "plan": {
                    "load_seconds": plan.load,
                    "fault_seconds": plan.fault,
                    "receiver_down_seconds": plan.receiver_down,
                    "gap_seconds": plan.gap,
                    "drain_bound_seconds": plan.drain,
                    "time_scale": plan.scale,
                    "threads": plan.threads,
                    "rate": plan.rate,
                },
                "timings": timings,
                "machine": sampler.summary(),
                "setup_seconds": round(setup_seconds, 1),
                "drain_seconds": round(drained, 1),
                "total_seconds": round(time.monotonic() - began, 1),
                **ledger,
            }
            ok = ledger["ok"]
            write(results, results_dir, form)
    finally:
        sampler.stop.set()
        procs.stop_all()
        redis_server.kill()
        db.stop()
        if keep_logs or not ok:
            log(f"process logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def write(results: dict[str, Any], results_dir: Path, form: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    stem = results_dir / f"{stamp}-soak-{form}"
    text = table(results)
    machine = results["machine"]
    header = (
        f"# Soak {form}: {'reconciled' if results['ok'] else 'NOT reconciled'}\n\n"
        f"{results['date']}, commit {results['commit']}{' (dirty)' if results['dirty'] else ''}; "
        f"load {results['plan']['load_seconds']:.0f} s, each fault "
        f"{results['plan']['fault_seconds']:.0f} s, receiver down "
        f"{results['plan']['receiver_down_seconds']:.0f} s, time scale "
        f"{results['plan']['time_scale']}; {machine['cores']} cores, load average "
        f"{machine['load1_mean']} (max {machine['load1_max']}); total "
        f"{results['total_seconds']:.0f} s (set-up {results['setup_seconds']:.0f} s, drain "
        f"{results['drain_seconds']:.0f} s).\n\n"
    )
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(header + text + "\n")
    print(header + text, flush=True)
    log(f"results: {stem}.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--short", action="store_true", help="the CI form: <= 3 min, scaled timings")
    form.add_argument("--minutes", type=float, help="load minutes (production timings)")
    parser.add_argument("--time-scale", type=float, help="override the timings' scale")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate", type=float, default=6.0, help="requests/s over all threads")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"soak: stopped by signal {signum}")  # so every started process is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.minutes:
        load, scale, form = args.minutes * 60, 1.0, f"{args.minutes:g}min"
    else:
        load, scale, form = SHORT_LOAD_SECONDS, SHORT_TIME_SCALE, "short"
    if args.time_scale:
        scale = args.time_scale
    plan = Plan(load=load, scale=scale, threads=args.threads, rate=args.rate)
    return soak(plan, form, args.results_dir, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
