"""The soak's own data services, never the machine's shared ones: a PostgreSQL primary with a
synchronous hot standby behind a loopback TCP proxy (the address the service is given, as a
managed database's is), and a Redis without persistence, each on a free loopback port.

`Database.fail_over()` does what a managed database's failover does: the address stops
answering, the primary dies (`pg_ctl stop -m immediate`), the standby is promoted and the
address answers again from it. The standby is synchronous (`synchronous_standby_names = '*'`),
as a high-availability pair is, so a commit the service answered is never lost by the failover.
`RedisServer.restart()` kills the server and starts an empty one on the same port.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from duka_bench.procs import free_port

from tests.fixtures.replica import Standby, _bindir
from tests.fixtures.tcp_proxy import TcpProxy

HOST = "127.0.0.1"
DB_NAME = "duka"
START_SECONDS = 60


class Database:
    """Primary + standby + proxy. `url` is the proxy's: the one DATABASE_URL the service gets."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise SystemExit("soak: PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bindir = bindir
        self.as_user: list[str] = []
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # the server refuses to run as root
            self.owner = pwd.getpwnam("postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.parent = Path(
            tempfile.mkdtemp(prefix="duka-soak-pg-")
        )  # the postgres user must reach it
        self._chown(self.parent)
        self.primary = self._node("primary")
        self.standby = self._node("standby")
        self.proxy = TcpProxy((HOST, self.primary.port))
        self.failed_over = False

    def _chown(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    def _node(self, name: str) -> Standby:
        port = free_port()
        dsn = f"host={HOST} port={port} user=postgres dbname=postgres connect_timeout=5"
        return Standby(HOST, port, self.parent / name, self.bindir, self.as_user, dsn)

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.proxy.port}/{DB_NAME}"

    def admin_url(self) -> str:
        """A direct URL of whichever server is the primary now (for the ledger's queries)."""
        node = self.standby if self.failed_over else self.primary
        return f"postgres://postgres@{HOST}:{node.port}/{DB_NAME}"

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        self._chown(path)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise SystemExit(f"soak: {what} failed: {result.stdout}{result.stderr}"[-3000:])

    def start(self) -> None:
        primary, standby = self.primary, self.standby
        self._check(
            primary.run(
                str(self.bindir / "initdb"),
                "-D",
                str(primary.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            "initdb",
        )
        common = [
            "listen_addresses = '127.0.0.1'",
            "max_connections = 100",
            "shared_buffers = '64MB'",
            "fsync = off",  # no machine crash is simulated; spares the shared disk
            "wal_level = replica",
            "max_wal_senders = 5",
            "hot_standby = on",
            "logging_collector = off",
        ]
        with (primary.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n".join(
                    [
                        *common,
                        f"port = {primary.port}",
                        f"unix_socket_directories = '{primary.datadir}'",
                        "",
                    ]
                )
            )
        self._write(
            primary.datadir / "pg_hba.conf",
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n",
        )
        primary.start()
        with psycopg.connect(primary.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        self._check(
            standby.run(
                str(self.bindir / "pg_basebackup"),
                "-h",
                HOST,
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(standby.datadir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ),
            "pg_basebackup",
        )
        with (standby.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {standby.port}\nunix_socket_directories = '{standby.datadir}'\n")
        self._chown(standby.datadir / "postgresql.conf")
        standby.start()
        self._wait_replication("streaming")
        # Only now synchronous (commits would wait for a standby that is not there yet), and on
        # the primary alone: the promoted standby has no standby of its own to wait for.
        with psycopg.connect(primary.dsn("postgres"), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
        self._wait_replication("sync")
        self.proxy.start()

    def _wait_replication(self, state: str) -> None:
        """Until the standby streams (`streaming`) or is the synchronous one (`sync`)."""
        column = "sync_state" if state == "sync" else "state"
        deadline = time.monotonic() + START_SECONDS
        while True:
            with psycopg.connect(self.primary.dsn("postgres"), autocommit=True) as conn:
                row = conn.execute(
                    f"SELECT count(*) FROM pg_stat_replication WHERE {column} = %s", [state]
                ).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: the standby is not {state} after {START_SECONDS} s")
            time.sleep(0.2)

    def fail_over(self, outage: float) -> None:
        """The address stops answering; the primary dies; the standby is promoted; after
        `outage` seconds in all, the address answers again from the new primary."""
        began = time.monotonic()
        self.proxy.stop()
        self.primary.run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.primary.datadir),
            "-m",
            "immediate",
            "-w",
            "stop",
        )
        self._check(
            self.standby.run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.standby.datadir),
                "-w",
                "-t",
                str(START_SECONDS),
                "promote",
            ),
            "pg_ctl promote",
        )
        self.failed_over = True
        self.proxy.target = (HOST, self.standby.port)
        time.sleep(max(0.0, outage - (time.monotonic() - began)))
        self.proxy.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.proxy.stop()
        for node in (self.primary, self.standby):
            if node.datadir.exists():
                node.run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(node.datadir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                )
        shutil.rmtree(self.parent, ignore_errors=True)


class RedisServer:
    """redis-server on a free loopback port without persistence, in a process group of its own."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("soak: redis-server not found")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    HOST,
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("soak: redis-server did not start") from None
                time.sleep(0.1)
            finally:
                client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, outage: float) -> None:
        """Killed (its data is lost: nothing is saved) and started empty after `outage` s."""
        self.kill()
        time.sleep(outage)
        self.start()
