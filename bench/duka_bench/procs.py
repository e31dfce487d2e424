"""Starting and stopping what the bench runs (the Procfile's processes, the gateway, PostgreSQL
and Redis when they are down), and the small HTTP and SQL helpers it talks to them with."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import HOST, PG_ADMIN_URL, ROOT, SCOPES, log


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 25.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        # Stragglers of the group (e.g. Dramatiq's forks) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Everything the bench started; stopped in reverse order on exit, whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        handle = log_path.open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
        handle.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def cpu_ticks() -> dict[int, tuple[str, int, int]]:
    """Every process's (comm, parent, utime+stime ticks), for the CPU split of a run."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, (_, ppid, _) in cpu_ticks().items():
        children.setdefault(ppid, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(proc: Proc) -> dict[str, float]:
    """RSS of a process tree: the largest leaf (a web/worker process) and the whole tree."""
    pids = [proc.popen.pid, *descendants(proc.popen.pid)]
    leaves = [p for p in pids if not descendants(p)]
    sizes = {p: rss_mb(p) for p in pids}
    leaf_sizes = [sizes[p] for p in leaves] or [0.0]
    return {
        "max_process_mb": round(max(leaf_sizes), 1),
        "total_mb": round(sum(sizes.values()), 1),
        "processes": len([s for s in sizes.values() if s > 0]),
    }


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv[:4])} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("bench: wrk is missing; install it with `sudo apt-get install -y wrk`")
    log("installing wrk from Debian's packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        run(install, env=env, timeout=300)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is still missing after apt-get install")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SystemExit(f"bench: timed out after {timeout:.0f} s waiting for {what}")


def ensure_services() -> None:
    """PostgreSQL on :5432 and Redis on :6379 of 127.0.0.1, started the way .ci/run does."""
    if not _port_open(5432) and shutil.which("pg_ctlcluster"):
        versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
        if versions:
            log("starting PostgreSQL")
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"],
                capture_output=True,
                timeout=60,
            )
    wait_until(lambda: _port_open(5432), 30, "PostgreSQL on 127.0.0.1:5432")
    if not _port_open(6379) and shutil.which("redis-server"):
        log("starting Redis")
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", HOST, "--port", "6379", "--save", ""],
            capture_output=True,
            timeout=30,
        )
    wait_until(lambda: _port_open(6379), 30, "Redis on 127.0.0.1:6379")


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def http(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Service:
    base: str
    env: dict[str, str]
    client_id: str = ""
    client_secret: str = ""

    def token(self) -> str:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPES})
        status, raw = http(
            "POST",
            f"{self.base}/o/token/",
            data=body.encode(),
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        if status != 200:
            raise SystemExit(f"bench: token request failed with {status}: {raw[:300]!r}")
        return json.loads(raw)["access_token"]

    def get_json(self, path: str, token: str) -> Any:
        status, raw = http(
            "GET", f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        if status != 200:
            raise SystemExit(f"bench: GET {path} answered {status}: {raw[:300]!r}")
        return json.loads(raw)


def db_scalar(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def db_row(url: str, sql: str) -> tuple[Any, ...]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        return tuple(row) if row else ()


def read_port(proc: Proc) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = proc.log_path.read_text().strip()
        if text.splitlines() and text.splitlines()[0].isdigit():
            return int(text.splitlines()[0])
        if not proc.alive():
            break
        time.sleep(0.1)
    raise SystemExit(f"bench: the gateway did not start:\n{proc.tail()}")


def git(*args: str) -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return ""
