"""Pictures of the main pages of the demo practice, for people to look at (`make screenshots`).

Builds the demo (migrate + seed_demo) in a throw-away SQLite database, serves it with
runserver on a free port, signs in as the demo users and writes PNGs to screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}


def fail(message: str) -> None:
    print(f"screenshots: {message}", file=sys.stderr)
    sys.exit(2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            fail(f"runserver exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    fail(f"the server did not answer {url} within {timeout:.0f} s")


def demo_ids(env: dict) -> dict:
    """Ids of the demo's pages worth a picture, read from the demo database."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pims.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from labs.models import Referral

    referral = (
        Referral.objects.filter(department_id=1, status=Referral.STATUS_COMPLETE)
        .select_related("consultation")
        .order_by("-created_at")
        .first()
    )
    if referral is None:
        fail("seed_demo made no complete referral in department 1 to photograph")
    return {
        "consultation": referral.consultation_id,
        "patient": referral.consultation.patient_id,
    }


def sign_in(page, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(base + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if "/login/" in page.url:
        fail(f"could not sign in as {username}")


def shoot(page, name: str, *, full_page: bool = True) -> None:
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"  {path.relative_to(ROOT)}")


def take(base: str, ids: dict) -> None:
    from playwright.sync_api import sync_playwright

    from pims.demo import DEMO_USER_PASSWORD

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        fail("Debian's chromium is not installed (apt-get install chromium)")
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(15000)

        sign_in(page, base, "vet1", DEMO_USER_PASSWORD)
        page.goto(f"{base}/patients/{ids['patient']}/")
        shoot(page, "patient")
        page.goto(f"{base}/consultations/{ids['consultation']}/")
        shoot(page, "consultation-results")
        page.get_by_role("button", name="Add lab analyses").click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        dialog.get_by_label("Search by name or Code").fill("chem")
        page.wait_for_timeout(600)
        shoot(page, "lab-dialog", full_page=False)
        page.goto(f"{base}/patients/{ids['patient']}/results/")
        shoot(page, "results-history")
        page.goto(f"{base}/lab/worklist/")
        shoot(page, "lab-worklist")
        page.goto(f"{base}/lab/review/")
        page.wait_for_load_state("networkidle")
        shoot(page, "review-queue")

        sign_in(page, base, "admin1", DEMO_USER_PASSWORD)
        page.goto(f"{base}/settings/integrations/ivls/")
        shoot(page, "ivls-settings")
        page.goto(f"{base}/settings/lab-items/")
        shoot(page, "lab-items")
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pims-screens-") as tmp:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
                "PIMS_VAR_DIR": f"{tmp}/var",
                "CELERY_TASK_ALWAYS_EAGER": "true",
                "DEBUG": "true",
            }
        )
        if manage(env, "help", "seed_demo").returncode != 0:
            fail("the seed_demo command does not exist yet: the screenshots need the demo data")
        for args in (("migrate", "--noinput", "-v0"), ("seed_demo",)):
            done = manage(env, *args)
            if done.returncode != 0:
                fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(base + "/healthz/", server)
            ids = demo_ids(env)
            print(f"Writing screenshots of {base} to {OUT.relative_to(ROOT)}/:")
            take(base, ids)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
