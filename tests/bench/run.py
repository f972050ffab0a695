"""``python -m tests.bench.run``: measure the PIMS on the benchmark practice.

Copies the template database that ``make bench-data`` built, starts the stack on loopback
(the private PostgreSQL and Redis, gunicorn, and a Celery worker when one is measured),
drives it over HTTP with locust (headless, one process) and prints a table; the figures
also go to ``var/bench/results.json``. The load generator and the servers share the
machine's cores, so every figure is for client and server together.

Measured, in one run:

1. Poll: ``GET /api/ivls/v1/work-requests/`` (each department has a backlog of undelivered
   work requests) at concurrency 1, 16 and 64, against ``/api/ivls/v1/status/`` (the
   authenticated light endpoint) and ``/healthz/`` (the unauthenticated floor: one
   ``SELECT 1``) on the same server.
2. Ingest: Chem 17 result files POSTed to ``/api/ivls/v1/results/`` until matched, with
   Celery concurrency 1 and 2; queries per file (``result_file_process`` in-process);
   and the database floor: the same result rows inserted straight through psycopg.
3. Order to plug-in: from ``referral_create`` returning to the request appearing in a
   poll, with no Celery worker running.
4. Pages and documents: the consultation page with 1, 10 and 50 referrals of 17 results
   (time over HTTP with a session signed in through the login form; queries in-process),
   and the lab report PDF.
5. Memory: the peak resident size (VmHWM) of the web and Celery worker processes.

A measurement whose endpoint or page does not exist yet prints ``not available: <why>``
and the run goes on. ``--only poll,ingest`` runs some sections; ``--seconds`` sets the
length of each load measurement (20); ``--profile`` also writes cProfile reports of the
poll view and of result matching to ``var/bench/``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from tests.bench import cluster

RESULTS = cluster.BENCH_DIR / "results.json"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SECTIONS = ("poll", "order", "ingest", "pages", "memory")
TITLES = {
    "poll": "1. Poll",
    "ingest": "2. Ingest",
    "order": "3. Order to plug-in",
    "pages": "4. Pages and documents",
    "memory": "5. Memory (peak resident, VmHWM)",
}
POLL_CONCURRENCY = (1, 16, 64)
TIME_BUDGET = 14 * 60  # seconds; later sections give way rather than overrun
ORDER_REFERRALS = 200
ORDER_DEPARTMENT = 100
INGEST_USERS = 4
INGEST_DRAIN_SECONDS = 40
INGEST_FILES = 3000
INGEST_WARM_FILES = 12
SAMPLE_FILES = 20
PAGE_REQUESTS = 15
PDF_REQUESTS = 8
WORK_REQUESTS = "/api/ivls/v1/work-requests/"
STATUS = "/api/ivls/v1/status/"
RESULTS_URL = "/api/ivls/v1/results/"
HEALTHZ = "/healthz/"


class NotAvailable(Exception):
    """A measurement cannot be made (yet): the text says why."""


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def add(self, section: str, label: str, text: str, key: str | None = None, value=None):
        self.rows.append((section, label, text))
        if key is not None:
            self.figures.setdefault(section, {})[key] = value

    def unavailable(self, section: str, label: str, why: str, key: str | None = None):
        self.rows.append((section, label, f"not available: {why}"))
        self.figures.setdefault(section, {})[key or label] = {"not_available": why}

    def table(self) -> str:
        width = max(len(label) for _, label, _ in self.rows) if self.rows else 10
        lines = []
        current = None
        for section, label, text in sorted(self.rows, key=lambda row: row[0]):
            if section != current:
                lines.append(f"\n{section}")
                current = section
            lines.append(f"  {label:<{width}}  {text}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# HTTP from the runner itself (sequential measurements)
# --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


def request(port, method, path, *, headers=None, body=None, timeout=60.0) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Response(response.status, response.msg, data, time.perf_counter() - started)
    finally:
        conn.close()


class Browser:
    """A signed-in session over plain HTTP. Cookies are kept by hand: the production
    settings mark them Secure, which cookie jars refuse to send over http://."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def _keep(self, response: Response) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    def get(self, path: str) -> Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        response = request(self.port, "GET", path, headers=headers)
        self._keep(response)
        return response

    def post(self, path: str, data: dict) -> Response:
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://127.0.0.1:{self.port}{path}",
        }
        response = request(self.port, "POST", path, headers=headers, body=urlencode(data))
        self._keep(response)
        return response

    def sign_in(self, username: str, password: str) -> None:
        from django.urls import reverse

        login = reverse("login")
        page = self.get(login)
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        if page.status != 200 or not match:
            raise NotAvailable(f"the login form at {login} did not load ({page.status})")
        answer = self.post(
            login,
            {
                "csrfmiddlewaretoken": match.group(1).decode(),
                "username": username,
                "password": password,
            },
        )
        if answer.status != 302:
            raise NotAvailable(f"signing in through {login} answered {answer.status}, not 302")


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


def vm_hwm_kib(pid: int) -> int:
    """The peak resident set size of a process, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - psutil missing or the process gone
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError, ValueError):
                text = status.read_text()
                ppid = int(re.search(r"^PPid:\s+(\d+)", text, re.M).group(1))
                if ppid == pid:
                    found.append(int(status.parent.name))
        return found


def stop_process(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Stack:
    """The servers of one run, stopped in reverse order however the run ends."""

    def __init__(self, *, web_workers: int):
        self.pg = cluster.Postgres()
        self.redis = cluster.Redis()
        self.web_workers = web_workers
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_concurrency = 0
        self.port = 0
        self.env: dict[str, str] = {}
        self.logs = cluster.BENCH_DIR / "logs"
        self.web_peak_kib = 0
        self.web_master_peak_kib = 0
        self.celery_peaks: dict[int, dict[str, int]] = {}

    # -- start -----------------------------------------------------------------------

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg.start(cluster.PG_RUN_OPTIONS)
        _log(f"PostgreSQL on 127.0.0.1:{self.pg.port}; copying {cluster.TEMPLATE_DB}")
        import psycopg

        started = time.monotonic()
        with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {cluster.RUN_DB} WITH (FORCE)")
            # FILE_COPY copies the files; the default WAL_LOG would write the whole
            # template through the WAL.
            conn.execute(
                f"CREATE DATABASE {cluster.RUN_DB} TEMPLATE {cluster.TEMPLATE_DB} "
                "STRATEGY FILE_COPY"
            )
        _log(f"copied in {time.monotonic() - started:.1f} s")
        self.redis.start()
        self.env = cluster.pims_environment(
            database_url=self.pg.url(cluster.RUN_DB), redis_url=self.redis.url
        )
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        # Migrations newer than the template (the schema moves on; the data does not).
        call_command("migrate", verbosity=0, interactive=False)
        collect_static()
        self.start_web()

    def start_web(self) -> None:
        self.port = cluster.free_port()
        log = (self.logs / "gunicorn.log").open("ab")
        self.web = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "pims.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.web_workers),
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            cwd=cluster.ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError("gunicorn stopped; see var/bench/logs/gunicorn.log")
            with contextlib.suppress(OSError):
                if request(self.port, "GET", HEALTHZ, timeout=2).status == 200:
                    _log(f"gunicorn on 127.0.0.1:{self.port} with {self.web_workers} sync workers")
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz/ within 60 s")

    def start_worker(self, concurrency: int) -> None:
        self.stop_worker()
        self.flush_broker()
        log = (self.logs / "celery.log").open("ab")
        self.worker = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pims",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "warning",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=cluster.ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.worker_concurrency = concurrency
        # Ready when its pool processes exist (the prefork pool starts them last).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError("the Celery worker stopped; see var/bench/logs/celery.log")
            if len(children_of(self.worker.pid)) >= concurrency:
                time.sleep(1.0)
                return
            time.sleep(0.2)
        raise RuntimeError("the Celery worker did not start within 60 s")

    def flush_broker(self) -> None:
        import redis

        redis.Redis.from_url(self.redis.url).flushdb()

    # -- memory ----------------------------------------------------------------------

    def sample_memory(self) -> None:
        if self.web and self.web.poll() is None:
            self.web_master_peak_kib = max(self.web_master_peak_kib, vm_hwm_kib(self.web.pid))
            for pid in children_of(self.web.pid):
                self.web_peak_kib = max(self.web_peak_kib, vm_hwm_kib(pid))
        if self.worker and self.worker.poll() is None:
            peaks = self.celery_peaks.setdefault(self.worker_concurrency, {"main": 0, "child": 0})
            peaks["main"] = max(peaks["main"], vm_hwm_kib(self.worker.pid))
            for pid in children_of(self.worker.pid):
                peaks["child"] = max(peaks["child"], vm_hwm_kib(pid))

    # -- stop ------------------------------------------------------------------------

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.sample_memory()
            stop_process(self.worker)
            self.worker = None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.sample_memory()
        self.stop_worker()
        stop_process(self.web)
        self.web = None
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        self.redis.stop()
        self.pg.stop()


# --------------------------------------------------------------------------------------
# Locust
# --------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    count: int
    errors: int
    statuses: dict[int, int]
    rps: float
    p50: float
    p95: float
    p99: float
    first_start: float  # wall clock
    last_end: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request, by process


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by the web server, PostgreSQL and the Celery worker."""
    groups: dict[str, list[int]] = {"web": [], "db": [], "celery": []}
    if stack.web and stack.web.poll() is None:
        groups["web"] = [stack.web.pid, *children_of(stack.web.pid)]
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int((cluster.PG_DIR / "postmaster.pid").read_text().split()[0])
        groups["db"] = [postmaster, *children_of(postmaster)]
    if stack.worker and stack.worker.poll() is None:
        groups["celery"] = [stack.worker.pid, *children_of(stack.worker.pid)]
    return {name: sum(_cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


def run_locust(
    stack: Stack, user_class: str, *, users: int, seconds: float, extra_env: dict
) -> LoadResult:
    out = cluster.BENCH_DIR / "locust-out.json"
    out.unlink(missing_ok=True)
    env = dict(stack.env)
    env.update(extra_env)
    env["BENCH_OUT"] = str(out)
    log = (stack.logs / "locust.log").open("ab")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            "1000",
            "--run-time",
            f"{seconds:g}s",
            "--host",
            f"http://127.0.0.1:{stack.port}",
            "--only-summary",
            "--stop-timeout",
            "5",
            "--exit-code-on-error",
            "0",
            "--loglevel",
            "WARNING",
            user_class,
        ],
        cwd=cluster.ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    before = cpu_snapshot(stack)
    client_cpu = 0.0
    try:
        deadline = time.monotonic() + seconds + 45
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError("locust did not stop in time")
            stack.sample_memory()
            client_cpu = max(client_cpu, _cpu_seconds(proc.pid))
            time.sleep(0.25)
    finally:
        stop_process(proc)
    after = cpu_snapshot(stack)
    if not out.exists():
        raise RuntimeError("locust wrote no timings; see var/bench/logs/locust.log")
    samples = json.loads(out.read_text())["samples"]
    if not samples:
        raise RuntimeError("locust made no request")
    statuses: dict[int, int] = {}
    for _, _, status in samples:
        statuses[status] = statuses.get(status, 0) + 1
    ok = [(end, ms) for end, ms, status in samples if 200 <= status < 300]
    times = [ms for _, ms in ok] or [0.0]
    first = min(end - ms / 1000 for end, ms, _ in samples)
    last = max(end for end, _, _ in samples)
    return LoadResult(
        count=len(ok),
        errors=len(samples) - len(ok),
        statuses=statuses,
        rps=len(ok) / max(last - first, 1e-9),
        p50=percentile(times, 50),
        p95=percentile(times, 95),
        p99=percentile(times, 99),
        first_start=first,
        last_end=last,
        cpu_ms={
            **{
                name: round((after[name] - before[name]) * 1000 / max(len(samples), 1), 2)
                for name in before
                if after[name] > before[name]
            },
            "client": round(client_cpu * 1000 / max(len(samples), 1), 2),
        },
    )


def load_text(result: LoadResult) -> str:
    text = (
        f"{result.rps:8.1f} req/s   p50 {result.p50:7.1f} ms   p95 {result.p95:7.1f} ms   "
        f"p99 {result.p99:7.1f} ms"
    )
    if result.cpu_ms:
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in result.cpu_ms.items())
        text += f"   CPU ms/req: {parts}"
    if result.errors:
        others = {s: n for s, n in result.statuses.items() if not 200 <= s < 300}
        text += f"   ({result.errors} errors: {others})"
    return text


def load_figures(result: LoadResult) -> dict:
    return {
        "requests": result.count,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50, 2),
        "p95_ms": round(result.p95, 2),
        "p99_ms": round(result.p99, 2),
        "cpu_ms_per_request": result.cpu_ms,
    }


# --------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, stack: Stack, report: Report, args, stamp: dict):
        self.stack = stack
        self.report = report
        self.args = args
        self.stamp = stamp
        self.started = time.monotonic()
        self.password = cluster.IVLS_PASSWORD

    def remaining(self) -> float:
        return TIME_BUDGET - (time.monotonic() - self.started)

    def auth(self, unit) -> dict:
        return {"Authorization": basic(str(unit), self.password)}

    def probe(self, path: str, *, unit=None, what: str) -> Response:
        """Refuse to measure an endpoint that is missing or broken."""
        headers = self.auth(unit) if unit is not None else {}
        response = request(self.stack.port, "GET", path, headers=headers)
        if response.status == 404:
            raise NotAvailable(f"GET {path} answers 404 ({what} is not built yet)")
        if response.status in (401, 403):
            raise NotAvailable(f"GET {path} answers {response.status} to the bench credentials")
        if response.status != 200:
            raise NotAvailable(f"GET {path} answers {response.status}")
        return response

    # -- 1. poll -----------------------------------------------------------------------

    def poll(self) -> None:
        section = TITLES["poll"]
        seconds = self.args.seconds
        credentials = [[str(unit), self.password] for unit in range(1, 101)]
        endpoints = [
            ("work-requests", WORK_REQUESTS, credentials, "the work request API"),
            ("status (authenticated, light)", STATUS, credentials, "the status API"),
            ("healthz (unauthenticated floor)", HEALTHZ, [], "the health check"),
        ]
        by_endpoint: dict[str, dict[int, LoadResult]] = {}
        for label, path, creds, what in endpoints:
            try:
                answer = self.probe(path, unit=1 if creds else None, what=what)
            except NotAvailable as why:
                self.report.unavailable(section, label, str(why), key=label)
                continue
            if path == WORK_REQUESTS:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    listed = len(answer.json()["work_requests"])
                    self.report.add(
                        section,
                        "backlog per department",
                        f"{listed} pending work requests in each poll answer "
                        f"({len(answer.body)} bytes)",
                        "backlog_per_department",
                        listed,
                    )
            env = {"BENCH_PATH": path, "BENCH_CREDENTIALS": json.dumps(creds)}
            # Untimed warm-up: every web worker connects to the database and loads code.
            run_locust(self.stack, "PollUser", users=8, seconds=3, extra_env=env)
            for users in POLL_CONCURRENCY:
                if self.remaining() < seconds + 60:
                    self.report.unavailable(
                        section, f"{label} c={users}", "time budget used up", f"{path}@{users}"
                    )
                    continue
                _log(f"poll: {path} at concurrency {users} for {seconds} s")
                result = run_locust(
                    self.stack, "PollUser", users=users, seconds=seconds, extra_env=env
                )
                by_endpoint.setdefault(label, {})[users] = result
                self.report.add(
                    section,
                    f"{label} c={users}",
                    load_text(result),
                    f"{label} c={users}",
                    load_figures(result),
                )
        work = by_endpoint.get("work-requests", {})
        for floor_label in ("status (authenticated, light)", "healthz (unauthenticated floor)"):
            floor = by_endpoint.get(floor_label, {})
            for users in POLL_CONCURRENCY:
                if users in work and users in floor and work[users].rps:
                    ratio = floor[users].rps / work[users].rps
                    name = floor_label.split(" ")[0]
                    self.report.add(
                        section,
                        f"ratio {name}/work-requests c={users}",
                        f"{ratio:5.2f}x the throughput (work-requests reaches "
                        f"{100 / ratio:4.0f}% of {name})",
                        f"ratio_{name}_c{users}",
                        round(ratio, 2),
                    )

    # -- 3. order to plug-in ---------------------------------------------------------

    def order(self) -> None:
        section = TITLES["order"]
        label = "referral_create -> poll"
        if self.stack.worker is not None:
            self.stack.stop_worker()
        try:
            self.probe(WORK_REQUESTS, unit=ORDER_DEPARTMENT, what="the work request API")
        except NotAvailable as why:
            self.report.unavailable(section, label, str(why), "latency")
            return
        from django.contrib.auth import get_user_model

        from billing.models import Item
        from billing.selectors import item_list_for_department
        from labs.services import referral_create
        from patients.models import Consultation, Patient
        from pims.models import Department

        department = Department.objects.get(pk=ORDER_DEPARTMENT)
        item = Item.objects.get(item_list=item_list_for_department(department), code="CHEM17")
        vet = get_user_model().objects.get(username=cluster.USERNAME)
        patients = list(
            Patient.objects.filter(consultations__department=department).distinct()[:50]
        )
        seen: dict[str, float] = {}
        poll_seconds: list[float] = []
        stop = threading.Event()
        errors: list[str] = []
        port = self.stack.port
        headers = self.auth(ORDER_DEPARTMENT)

        def poller():
            # A plug-in that polls back to back and acknowledges what it delivered.
            while not stop.is_set():
                try:
                    answer = request(port, "GET", WORK_REQUESTS, headers=headers)
                    arrived = time.monotonic()
                    poll_seconds.append(answer.seconds)
                    if answer.status != 200:
                        errors.append(f"poll answered {answer.status}")
                        time.sleep(0.05)
                        continue
                    for wr in answer.json().get("work_requests", []):
                        number = str(wr.get("requisition_number"))
                        if number in wanted and number not in seen:
                            seen[number] = arrived
                            request(
                                port, "POST", f"{WORK_REQUESTS}{wr['id']}/ack/", headers=headers
                            )
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    errors.append(repr(exc))
                    time.sleep(0.05)

        wanted: set[str] = set()
        thread = threading.Thread(target=poller, daemon=True)
        thread.start()
        rng = random.Random(7)  # noqa: S311 - jitter, not security
        latencies: list[float] = []
        create_ms: list[float] = []
        missed = 0
        try:
            for n in range(ORDER_REFERRALS):
                if self.remaining() < 60:
                    break
                consultation = Consultation.objects.create(
                    patient=patients[n % len(patients)],
                    department=department,
                    vet=vet,
                    reason="Bench order",
                )
                started = time.monotonic()
                referral = referral_create(consultation=consultation, items=[item], created_by=vet)
                returned = time.monotonic()
                number = str(referral.number)
                wanted.add(number)
                create_ms.append((returned - started) * 1000)
                deadline = returned + 10
                while number not in seen and time.monotonic() < deadline:
                    time.sleep(0.001)
                if number in seen:
                    latencies.append((seen[number] - returned) * 1000)
                else:
                    missed += 1
                time.sleep(rng.uniform(0, 0.03))  # vary the phase against the poll loop
        finally:
            stop.set()
            thread.join(10)
        if not latencies:
            why = errors[0] if errors else "no referral appeared in a poll within 10 s"
            self.report.unavailable(section, label, why, "latency")
            return
        figures = {
            "referrals": len(latencies) + missed,
            "missed": missed,
            "median_ms": round(statistics.median(latencies), 1),
            "max_ms": round(max(latencies), 1),
            "poll_median_ms": round(statistics.median(poll_seconds) * 1000, 1),
            "referral_create_median_ms": round(statistics.median(create_ms), 1),
        }
        self.report.add(
            section,
            label,
            f"median {figures['median_ms']:.1f} ms, max {figures['max_ms']:.1f} ms over "
            f"{figures['referrals']} referrals ({missed} missed); Celery stopped",
            "latency",
            figures,
        )
        self.report.add(
            section,
            "  (poll round trip, referral_create)",
            f"poll median {figures['poll_median_ms']:.1f} ms back to back; referral_create "
            f"median {figures['referral_create_median_ms']:.1f} ms",
        )

    # -- 2. ingest -------------------------------------------------------------------

    def ingest_files(self, count: int) -> list[dict]:
        """Chem 17 result files for sent referrals, written by the IVLS simulator."""
        from integrations.ivls.models import WorkRequest
        from integrations.ivls_simulator import make_result_xml

        folder = cluster.BENCH_DIR / "files"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.xml"):
            old.unlink()
        requests = (
            WorkRequest.objects.filter(
                action=WorkRequest.ACTION_NEW,
                referral__status="sent",
                referral__runs__isnull=True,
            )
            .select_related("referral")
            .order_by("id")[:count]
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        manifest = []
        for n, wr in enumerate(requests):
            content = make_result_xml(
                wr.xml.encode("utf-8"),
                seed=n,
                instrument="Catalyst_One",
                now=now - dt.timedelta(minutes=5, seconds=n),
            )
            path = folder / f"{wr.referral.number}.xml"
            path.write_bytes(content)
            manifest.append(
                {
                    "path": str(path),
                    "unit": wr.department_id,
                    "referral": wr.referral_id,
                    "number": wr.referral.number,
                }
            )
        return manifest

    def ingest(self) -> None:
        section = TITLES["ingest"]
        try:
            from integrations.ivls_simulator import make_result_xml  # noqa: F401
        except ImportError as exc:
            self.report.unavailable(section, "result files", f"no simulator ({exc})", "ingest")
            return
        manifest = self.ingest_files(SAMPLE_FILES + INGEST_WARM_FILES + INGEST_FILES)
        if len(manifest) < SAMPLE_FILES + 10:
            self.report.unavailable(
                section, "result files", "too few sent referrals: rebuild with make bench-data"
            )
            return
        sample, rest = manifest[:SAMPLE_FILES], manifest[SAMPLE_FILES:]
        per_file = self.sample_queries(section, sample)
        warm, rest = rest[:INGEST_WARM_FILES], rest[INGEST_WARM_FILES:]
        posted = {}
        for concurrency in (1, 2):
            if self.remaining() < 2 * self.args.seconds + INGEST_DRAIN_SECONDS + 60:
                self.report.unavailable(
                    section, f"Celery concurrency {concurrency}", "time budget used up"
                )
                continue
            # A burst the in-process rate says takes about --seconds to match (a core per
            # pool process at best); without that rate, as many as can be posted.
            if per_file:
                size = round(self.args.seconds * concurrency / per_file)
                size = max(INGEST_USERS * 5, min(size, len(rest) // (3 - concurrency)))
            else:
                size = len(rest) // (3 - concurrency)
            files, rest = rest[:size], rest[size:]
            outcome = self.ingest_run(section, concurrency, files, warm if concurrency == 1 else [])
            if outcome:
                posted[concurrency] = outcome
        self.stack.stop_worker()
        self.database_floor(section, posted)

    def sample_queries(self, section: str, sample: list[dict]) -> float | None:
        """Queries and time per file, in-process; returns the median seconds per file."""
        label = "queries per file (in-process)"
        try:
            from integrations.ivls.services import result_file_process, result_file_receive
        except ImportError:
            self.report.unavailable(
                section,
                label,
                "integrations.ivls.services has no result_file_receive/result_file_process yet",
                "queries_per_file",
            )
            return None
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from pims.models import Department

        counts, seconds, statuses = [], [], {}
        profile = None
        if self.args.profile:
            import cProfile

            profile = cProfile.Profile()
        for entry in sample:
            department = Department.objects.get(pk=entry["unit"])
            content = Path(entry["path"]).read_bytes()
            result_file = result_file_receive(
                departments=[department], content=content, file_name=Path(entry["path"]).name
            )
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                if profile:
                    profile.enable()
                result_file = result_file_process(result_file=result_file)
                if profile:
                    profile.disable()
                seconds.append(time.perf_counter() - started)
            counts.append(len(queries.captured_queries))
            statuses[result_file.status] = statuses.get(result_file.status, 0) + 1
        # The receive queued a task for each file; no worker must see them twice.
        self.stack.flush_broker()
        if profile:
            write_profile(profile, "profile-result-file-process.txt")
        figures = {
            "files": len(counts),
            "median_queries": statistics.median(counts),
            "max_queries": max(counts),
            "median_ms": round(statistics.median(seconds) * 1000, 1),
            "statuses": statuses,
        }
        self.report.add(
            section,
            label,
            f"median {figures['median_queries']:g} queries (max {figures['max_queries']}), "
            f"{figures['median_ms']:.1f} ms per Chem 17 file in-process; statuses {statuses}",
            "queries_per_file",
            figures,
        )
        return statistics.median(seconds) if statuses.get("matched") else None

    def ingest_run(
        self, section: str, concurrency: int, files: list[dict], warm: list[dict]
    ) -> dict | None:
        from integrations.ivls.models import InboundResultFile
        from labs.models import Result

        label = f"Celery concurrency {concurrency}"
        try:
            answer = request(self.stack.port, "POST", RESULTS_URL, headers=self.auth(1), body=b"")
        except OSError as exc:
            self.report.unavailable(section, label, repr(exc), f"concurrency_{concurrency}")
            return None
        if answer.status in (404, 405):
            self.report.unavailable(
                section,
                label,
                f"POST {RESULTS_URL} answers {answer.status} (the results API is not built yet)",
                f"concurrency_{concurrency}",
            )
            return None
        self.stack.start_worker(concurrency)
        env = {"BENCH_PASSWORD": self.password}
        if warm:
            # Untimed: each web worker's first publish to the broker and the worker's first
            # task load code and open connections.
            warm_path = cluster.BENCH_DIR / "files-warm.json"
            warm_path.write_text(json.dumps(warm))
            run_locust(
                self.stack,
                "ResultPostUser",
                users=INGEST_USERS,
                seconds=30,
                extra_env={**env, "BENCH_FILES": str(warm_path)},
            )
            self.wait_processed(0, len(warm), 30)
        watermark = InboundResultFile.objects.order_by("-id").values_list("id", flat=True).first()
        watermark = watermark or 0
        result_mark = Result.objects.order_by("-id").values_list("id", flat=True).first() or 0
        manifest_path = cluster.BENCH_DIR / f"files-{concurrency}.json"
        manifest_path.write_text(json.dumps(files))
        _log(f"ingest: Celery concurrency {concurrency}, a burst of {len(files)} files")
        load = run_locust(
            self.stack,
            "ResultPostUser",
            users=INGEST_USERS,
            seconds=self.args.seconds * 4,
            extra_env={**env, "BENCH_FILES": str(manifest_path)},
        )
        accepted = load.count
        # A backlog that does not drain in time still gives the worker's rate over the time
        # it was busy.
        counts, done_at_wall = self.wait_processed(watermark, accepted, INGEST_DRAIN_SECONDS)
        self.stack.stop_worker()
        matched = counts.get("matched", 0)
        results = Result.objects.filter(id__gt=result_mark).count()
        elapsed = max(done_at_wall - load.first_start, 1e-9)
        if not matched:
            self.report.unavailable(
                section,
                label,
                f"{accepted} files accepted but none matched within {INGEST_DRAIN_SECONDS} s "
                f"after posting (statuses {counts})",
                f"concurrency_{concurrency}",
            )
            return None
        figures = {
            "files_posted": accepted,
            "post_errors": load.errors,
            "post_rps": round(load.rps, 1),
            "post_p50_ms": round(load.p50, 1),
            "post_p95_ms": round(load.p95, 1),
            "matched": matched,
            "statuses": counts,
            "results_written": results,
            "files_per_s": round(matched / elapsed, 1),
            "analytes_per_s": round(results / elapsed, 1),
            "seconds_post_to_last_matched": round(elapsed, 1),
        }
        self.report.add(
            section,
            label,
            f"{figures['files_per_s']:6.1f} files/s  {figures['analytes_per_s']:7.1f} analytes/s "
            f"({matched} of {accepted} files matched in {elapsed:.1f} s from the first POST)",
            f"concurrency_{concurrency}",
            figures,
        )
        self.report.add(
            section,
            f"  POST {RESULTS_URL} (c={INGEST_USERS}, worker running)",
            load_text(load),
        )
        return {"files": files[: load.count + load.errors], "figures": figures}

    def wait_processed(self, watermark: int, expected: int, seconds: float):
        """Wait until the files after ``watermark`` are processed. Returns their statuses and
        the wall-clock time the last one was seen done."""
        from django.db.models import Count

        from integrations.ivls.models import InboundResultFile

        terminal = {"matched", "unmatched", "needs_review", "duplicate", "rejected", "failed"}
        deadline = time.monotonic() + seconds
        done_at_wall = time.time()
        last_done = -1
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = dict(
                InboundResultFile.objects.filter(id__gt=watermark)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            done = sum(n for status, n in counts.items() if status in terminal)
            if done != last_done:
                last_done, done_at_wall = done, time.time()
            if done >= sum(counts.values()) and sum(counts.values()) >= expected:
                break
            self.stack.sample_memory()
            time.sleep(0.1)
        self.stack.sample_memory()
        return counts, done_at_wall

    def database_floor(self, section: str, posted: dict) -> None:
        """The same result rows, inserted straight through psycopg: per file in its own
        transaction (executemany), and all at once with COPY."""
        import psycopg

        from integrations.ivls.interlink import parse_result
        from labs.flags import result_flag

        source = posted.get(1) or posted.get(2)
        files = source["files"] if source else self.ingest_files(500)
        files = files[:2000]
        rows_per_file = []
        for entry in files:
            run = parse_result(Path(entry["path"]).read_bytes()).run
            rows = []
            for assay in run.assays:
                rows.append(
                    (
                        None,
                        1,
                        entry["referral"],
                        None,
                        assay.code,
                        assay.value_text,
                        assay.value_number,
                        assay.unit,
                        assay.low,
                        assay.high,
                        assay.critical_low,
                        assay.critical_high,
                        assay.qualifier,
                        result_flag(
                            assay.value_number,
                            low=assay.low,
                            high=assay.high,
                            critical_low=assay.critical_low,
                            critical_high=assay.critical_high,
                        ),
                        True,
                        dt.datetime.now(dt.UTC),
                    )
                )
            rows_per_file.append(rows)
        columns = (
            "run_id, revision, referral_id, referral_line_id, code, value_text, value_number, "
            "unit, low, high, critical_low, critical_high, qualifier, flag, is_current, "
            "created_at"
        )
        placeholders = ", ".join(["%s"] * 16)
        insert = f"INSERT INTO labs_result ({columns}) VALUES ({placeholders})"  # noqa: S608
        total_rows = sum(len(rows) for rows in rows_per_file)
        with psycopg.connect(self.stack.pg.dsn(cluster.RUN_DB)) as conn:
            mark = conn.execute("SELECT coalesce(max(id), 0) FROM labs_result").fetchone()[0]
            conn.commit()
            started = time.perf_counter()
            for rows in rows_per_file:
                with conn.cursor() as cur:
                    cur.executemany(insert, rows)
                conn.commit()
            per_file = time.perf_counter() - started
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY labs_result ({columns}) FROM STDIN") as cp:
                for rows in rows_per_file:
                    for row in rows:
                        cp.write_row(row)
            conn.commit()
            bulk = time.perf_counter() - started
            conn.execute("DELETE FROM labs_result WHERE id > %s", [mark])
            conn.commit()
        floor = {
            "files": len(rows_per_file),
            "rows": total_rows,
            "executemany_files_per_s": round(len(rows_per_file) / per_file, 1),
            "executemany_rows_per_s": round(total_rows / per_file, 1),
            "copy_rows_per_s": round(total_rows / bulk, 1),
        }
        self.report.add(
            section,
            "database floor (psycopg, labs_result)",
            f"{floor['executemany_files_per_s']:7.1f} files/s "
            f"{floor['executemany_rows_per_s']:8.1f} rows/s (executemany, one commit per file);"
            f" COPY {floor['copy_rows_per_s']:.0f} rows/s",
            "database_floor",
            floor,
        )
        for concurrency, outcome in sorted(posted.items()):
            ratio = floor["executemany_rows_per_s"] / max(
                outcome["figures"]["analytes_per_s"], 1e-9
            )
            self.report.add(
                section,
                f"ratio floor/ingest c={concurrency}",
                f"{ratio:6.1f}x (ingest reaches {100 / ratio:.1f}% of the floor's row rate)",
                f"ratio_floor_c{concurrency}",
                round(ratio, 2),
            )

    # -- 4. pages --------------------------------------------------------------------

    def pages(self) -> None:
        section = TITLES["pages"]
        from django.urls import NoReverseMatch

        from labs.models import Referral

        pages = self.stamp.get("pages") or {}
        browser = Browser(self.stack.port)
        try:
            browser.sign_in(cluster.USERNAME, cluster.USER_PASSWORD)
        except NotAvailable as why:
            self.report.unavailable(section, "sign in", str(why))
            return
        for size, page in sorted(pages.items(), key=lambda kv: int(kv[0])):
            plural = "" if int(size) == 1 else "s"
            label = f"consultation, {size} referral{plural} x 17 results"
            try:
                path = reverse_any(
                    ("labs:consultation_detail", "patients:consultation_detail"),
                    page["consultation"],
                )
            except NoReverseMatch:
                self.report.unavailable(
                    section,
                    label,
                    "no URL named labs:consultation_detail or patients:consultation_detail",
                    f"consultation_{size}",
                )
                continue
            last = Referral.objects.get(pk=page["referrals"][-1])
            try:
                figures = self.time_page(browser, path, PAGE_REQUESTS, str(last.number))
                figures["queries"] = self.count_queries(path)
            except NotAvailable as why:
                self.report.unavailable(section, label, str(why), f"consultation_{size}")
                continue
            self.report.add(
                section,
                label,
                f"median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms  "
                f"{figures['queries']} queries  {figures['bytes'] // 1024} KiB{figures['note']}",
                f"consultation_{size}",
                figures,
            )
        label = "lab report PDF (17 results)"
        referral = Referral.objects.get(pk=self.stamp["report_referral"])
        try:
            path = reverse_any(("labs:referral_report_pdf",), referral.pk, referral)
        except NoReverseMatch:
            self.report.unavailable(
                section, label, "no URL named labs:referral_report_pdf", "report_pdf"
            )
            return
        try:
            figures = self.time_page(browser, path, PDF_REQUESTS, None, pdf=True)
        except NotAvailable as why:
            self.report.unavailable(section, label, str(why), "report_pdf")
            return
        self.report.add(
            section,
            label,
            f"median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms  "
            f"{figures['bytes'] // 1024} KiB",
            "report_pdf",
            figures,
        )

    def time_page(self, browser: Browser, path: str, count: int, expect, pdf=False) -> dict:
        first = browser.get(path)
        if first.status != 200:
            raise NotAvailable(f"GET {path} answers {first.status}")
        note = ""
        if pdf and not first.body.startswith(b"%PDF"):
            raise NotAvailable(f"GET {path} did not answer a PDF")
        if expect and expect.encode() not in first.body:
            note = f" (the page does not show referral {expect})"
        browser.get(path)  # warm
        times = []
        deadline = time.monotonic() + 30
        for _ in range(count):
            times.append(browser.get(path).seconds * 1000)
            if time.monotonic() > deadline:
                break
        return {
            "requests": len(times),
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "bytes": len(first.body),
            "note": note,
            "path": path,
        }

    def count_queries(self, path: str) -> int:
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        client.force_login(get_user_model().objects.get(username=cluster.USERNAME))
        client.get(path)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        if response.status_code != 200:
            raise NotAvailable(f"in-process GET {path} answers {response.status_code}")
        return len(queries.captured_queries)

    # -- 5. memory -------------------------------------------------------------------

    def memory(self) -> None:
        section = TITLES["memory"]
        self.stack.sample_memory()
        web = self.stack.web_peak_kib
        self.report.add(
            section,
            f"web worker (gunicorn, largest of {self.stack.web_workers})",
            f"{web / 1024:6.1f} MiB (master {self.stack.web_master_peak_kib / 1024:.1f} MiB)",
            "web_worker_mib",
            round(web / 1024, 1),
        )
        if not self.stack.celery_peaks:
            self.report.unavailable(
                section, "Celery worker", "no Celery worker ran in this run", "celery"
            )
        for concurrency, peaks in sorted(self.stack.celery_peaks.items()):
            self.report.add(
                section,
                f"Celery worker, concurrency {concurrency}",
                f"{peaks['child'] / 1024:6.1f} MiB per pool process "
                f"(main process {peaks['main'] / 1024:.1f} MiB)",
                f"celery_c{concurrency}_mib",
                {"pool_process": round(peaks["child"] / 1024, 1), "main": peaks["main"] / 1024},
            )

    # -- profiles --------------------------------------------------------------------

    def profile_poll(self) -> None:
        """cProfile of the poll view in-process (the same code the web workers run)."""
        import cProfile

        from django.test import Client

        client = Client()
        headers = {"HTTP_AUTHORIZATION": basic("1", self.password)}
        if client.get(WORK_REQUESTS, **headers).status_code != 200:
            return
        # CPU time, not wall time: the poll's cost is the web worker's CPU.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(300):
            client.get(WORK_REQUESTS, **headers)
        profile.disable()
        write_profile(profile, "profile-poll.txt")


def collect_static() -> None:
    """collectstatic for the production storage, only when a source file changed: it
    compresses every file again each time, which costs most of a minute on two cores."""
    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders
    from django.core.management import call_command

    entries = []
    for finder in get_finders():
        for path, storage in finder.list([]):
            stat = os.stat(storage.path(path))
            entries.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    signature = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()
    marker = Path(settings.STATIC_ROOT) / ".bench-sources"
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists() and marker.exists() and marker.read_text() == signature:
        return
    _log("collecting static files (once per change)")
    call_command("collectstatic", verbosity=0, interactive=False)
    marker.write_text(signature)


def write_profile(profile, name: str) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    (cluster.BENCH_DIR / name).write_text(out.getvalue())
    _log(f"wrote var/bench/{name}")


def reverse_any(names, pk, referral=None) -> str:
    """The path of the first URL name that exists, filling its one argument with the id
    (or, for an argument named like a number, the referral number)."""
    from django.urls import NoReverseMatch, get_resolver, reverse

    for name in names:
        namespace, _, short = name.rpartition(":")
        resolver = get_resolver()
        try:
            if namespace:
                resolver = resolver.namespace_dict[namespace][1]
            possibilities = resolver.reverse_dict.getlist(short)
        except KeyError:
            continue
        for possibility in possibilities:
            for _format, params in possibility[0]:
                if not params:
                    continue
                kwargs = {}
                for param in params:
                    if "number" in param and referral is not None:
                        kwargs[param] = referral.number
                    else:
                        kwargs[param] = pk
                with contextlib.suppress(NoReverseMatch):
                    return reverse(name, kwargs=kwargs)
        with contextlib.suppress(NoReverseMatch):
            return reverse(name, args=[pk])
    raise NoReverseMatch(", ".join(names))


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1])
    return {
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(ram / 1024 / 1024, 1),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="per load measurement")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--profile", action="store_true", help="also write cProfile reports")
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = wanted - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    from tests.bench.data import stamp_current

    stamp = stamp_current()
    if not stamp or not (cluster.PG_DIR / "PG_VERSION").exists():
        print("No current benchmark data: run `make bench-data` first.", file=sys.stderr)
        return 2

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    info = machine()
    _log(f"load average before the run: {info['load_average_before']}")
    report = Report()
    stack = Stack(web_workers=args.web_workers)
    started = time.monotonic()
    status = 0
    try:
        try:
            stack.start()
        except Exception as exc:  # noqa: BLE001 - said plainly, after stopping what started
            print(f"The benchmark stack did not start: {exc}", file=sys.stderr)
            print("If the template database is missing, run `make bench-data`.", file=sys.stderr)
            stack.stop()
            return 1
        from tests.bench.data import schema_migrations

        newer = sorted(set(schema_migrations()) - set(stamp.get("migrations", [])))
        if newer:
            _log(
                f"the benchmark data predates {len(newer)} migrations ({', '.join(newer[:4])}"
                f"{', ...' if len(newer) > 4 else ''}): they were applied to the copy; "
                "`make bench-data` rebuilds the data for them"
            )
        bench = Bench(stack, report, args, stamp)
        steps = [
            ("poll", bench.poll),
            ("order", bench.order),
            ("ingest", bench.ingest),
            ("pages", bench.pages),
        ]
        for name, step in steps:
            if name not in wanted:
                continue
            try:
                step()
            except NotAvailable as why:
                report.unavailable(TITLES[name], name, str(why))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken section must not end the run
                report.unavailable(TITLES[name], name, f"failed: {exc!r}")
                import traceback

                traceback.print_exc()
        if args.profile:
            bench.profile_poll()
        if "memory" in wanted:
            bench.memory()
    except KeyboardInterrupt:
        print("\nInterrupted: stopping everything the benchmark started.", file=sys.stderr)
        status = 130
    finally:
        stack.stop()
    elapsed = time.monotonic() - started
    header = (
        f"PIMS benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s. "
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM, load "
        f"average {info['load_average_before'][0]} before the run. "
        f"Client (locust, one process) and servers (gunicorn {args.web_workers} sync workers, "
        "Celery, PostgreSQL, Redis) share these cores."
    )
    print("\n" + header)
    print(
        f"Data: {stamp['counts']['department']} departments, {stamp['counts']['patient']} "
        f"patients, {stamp['counts']['referral']} referrals, {stamp['counts']['result']} "
        f"results; each measurement {args.seconds:g} s."
    )
    print(report.table())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "seconds": round(elapsed, 1),
                "machine": info,
                "note": "client and server share the machine's cores",
                "setup": {
                    "web_workers": args.web_workers,
                    "seconds_per_measurement": args.seconds,
                    "poll_concurrency": list(POLL_CONCURRENCY),
                    "ingest_post_users": INGEST_USERS,
                    "postgres": cluster.PG_RUN_OPTIONS,
                },
                "data": stamp["counts"],
                "figures": report.figures,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"\nFigures written to {RESULTS.relative_to(cluster.ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
