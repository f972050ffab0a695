import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SHARED_INTERLINK = ROOT.parent / "shared" / "fixtures" / "interlink"
OWN_INTERLINK = Path(__file__).resolve().parent / "fixtures" / "interlink"


@pytest.fixture
def shared_interlink() -> Path:
    """The real InterLink files beside the checkout (CI has them; a bare clone does not)."""
    if not SHARED_INTERLINK.is_dir():
        pytest.skip(f"real InterLink fixtures not present at {SHARED_INTERLINK}")
    return SHARED_INTERLINK


@pytest.fixture
def own_interlink() -> Path:
    return OWN_INTERLINK


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a command or server on the embedded SQLite set-up, without Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        PIMS_VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "media"),
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run our manage.py in a subprocess; fail the test with its stderr when it fails."""
    done = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def process_env(**extra: str) -> dict[str, str]:
    """The environment for a server, worker or command started by a test: the test database."""
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}"
    )
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env["IVLS_PASSWORD_KEY"] = settings.IVLS_PASSWORD_KEY
    env["SECRET_KEY"] = settings.SECRET_KEY
    env.update(extra)
    return env


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker process on the test database and the tests' Redis."""
    from pims.celery import app

    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set: run the tests through `make test`")
    env = process_env()
    # Drop messages left by earlier runs so this worker only sees this test's tasks.
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pims",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "warning",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
    )
    old_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield proc
    finally:
        app.conf.task_always_eager = old_eager
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy; return its value or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it")
    return path


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    context.close()


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """Live-server threads and subprocesses can leave sessions on the test database; end them
    before it is dropped, so the next run starts from a clean slate."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
