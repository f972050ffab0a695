"""The benchmark's private PostgreSQL and Redis, and the environment the PIMS runs with.

The PostgreSQL cluster lives in ``var/bench/pg`` and is kept between runs (the template
database that ``make bench-data`` builds is expensive); both servers listen on free
loopback ports chosen when they start. PostgreSQL refuses to run as root, so as root its
programs run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "var" / "bench"
PG_DIR = BENCH_DIR / "pg"
PG_LOG = PG_DIR / "server.log"
STAMP = BENCH_DIR / "data.json"
REDIS_PID = BENCH_DIR / "redis.pid"

TEMPLATE_DB = "pims_bench_template"
RUN_DB = "pims_bench_run"

# Known secrets of a throwaway installation: the benchmark signs in with them.
IVLS_PASSWORD_KEY = "bench-ivls-password-key-0123456789abcdef"
IVLS_PASSWORD = "bench-ivls-password-2026"
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdefghijklmnop"
USERNAME = "bench"
USER_PASSWORD = "bench-user-pass-2026"

# A production-like server for the measurements...
PG_RUN_OPTIONS = [
    "shared_buffers=512MB",
    "effective_cache_size=4GB",
    "work_mem=16MB",
    "max_connections=100",
]
# ...and an unsafe, fast one while the template is loaded (it is rebuilt, never repaired).
PG_LOAD_OPTIONS = [
    "shared_buffers=512MB",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "maintenance_work_mem=1GB",
    "max_wal_size=8GB",
    "checkpoint_timeout=30min",
    "autovacuum=off",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise SystemExit(
        "PostgreSQL's server programs are not installed (apt-get install postgresql); "
        "the benchmark runs its own server."
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own fixed commands
        cmd, check=True, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Postgres:
    """The private cluster. ``started`` says whether this process started it (and stops it)."""

    port: int = 0
    started: bool = False

    @property
    def initialised(self) -> bool:
        return (PG_DIR / "PG_VERSION").exists()

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def running_port(self) -> int | None:
        """The port of a server already running on this cluster, if one is."""
        pid_file = PG_DIR / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def init(self) -> None:
        PG_DIR.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(PG_DIR, "postgres", "postgres")
        PG_DIR.chmod(0o700)
        _run(
            _as_postgres(
                [str(_pg_bin() / "initdb"), "-D", str(PG_DIR), "-U", "postgres", "--auth=trust"]
            ),
            timeout=300,
        )

    def start(self, options: list[str]) -> None:
        port = self.running_port()
        if port:
            self.port, self.started = port, False
            return
        if not self.initialised:
            self.init()
        self.port = free_port()
        settings = " ".join(f"-c {option}" for option in options)
        _run(
            _as_postgres(
                [
                    str(_pg_bin() / "pg_ctl"),
                    "-D",
                    str(PG_DIR),
                    "-l",
                    str(PG_LOG),
                    "-o",
                    f"-p {self.port} -k {PG_DIR} -c listen_addresses=127.0.0.1 {settings}",
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            timeout=180,
        )
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run(
                _as_postgres(
                    [str(_pg_bin() / "pg_ctl"), "-D", str(PG_DIR), "-m", "fast", "-w", "stop"]
                ),
                timeout=120,
            )
        self.started = False


@dataclass
class Redis:
    port: int = 0
    pid: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise SystemExit("redis-server is not installed (apt-get install redis-server).")
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        REDIS_PID.unlink(missing_ok=True)
        self.port = free_port()
        _run(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_PID),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(BENCH_DIR),
                "--logfile",
                str(BENCH_DIR / "redis.log"),
            ]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.pid = int(REDIS_PID.read_text().strip())
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            time.sleep(0.05)
        raise RuntimeError("the private Redis did not start (see var/bench/redis.log)")

    def stop(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            self.pid = 0
        REDIS_PID.unlink(missing_ok=True)


def pims_environment(*, database_url: str, redis_url: str = "") -> dict[str, str]:
    """The environment a production-like PIMS runs with on the benchmark's servers."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("DJANGO_", "CELERY_")) or name.endswith("_FILE"):
            env.pop(name)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "False",
            "SECRET_KEY": SECRET_KEY,
            "IVLS_PASSWORD_KEY": IVLS_PASSWORD_KEY,
            "PIMS_INSTANCE_ID": "pims-bench",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            # The benchmark speaks plain HTTP on loopback, as behind a TLS-terminating proxy.
            "SECURE_SSL_REDIRECT": "False",
            "STATIC_ROOT": str(BENCH_DIR / "static"),
            "MEDIA_ROOT": str(BENCH_DIR / "media"),
            "PIMS_VAR_DIR": str(BENCH_DIR / "var"),
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "600",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "DJANGO_SETTINGS_MODULE": "pims.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env
