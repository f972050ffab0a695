"""The wiring: a page renders, a worker runs tasks, a PDF renders, a browser opens a page."""

import subprocess

import pytest
from django.db import connection

from pims.models import AuditEvent
from pims.tasks import ping
from tests.conftest import wait_for


def test_home_page_renders(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert "Sign in" in response.content.decode()


def test_healthz_reports_database(client, db):
    assert client.get("/healthz/").json() == {"status": "ok"}


def test_tests_run_on_postgresql(db):
    assert connection.vendor == "postgresql"


@pytest.mark.worker
def test_celery_task_runs_in_a_real_worker(celery_worker_process):
    ping.delay("smoke-123")
    assert wait_for(
        lambda: AuditEvent.objects.filter(action="system.ping", data__token="smoke-123").exists()
    )


def test_weasyprint_renders_pdf(tmp_path):
    from weasyprint import HTML

    pdf = HTML(string="<h1>Lab report</h1><p>Glucose 117 mg/dL</p>").write_pdf()
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Glucose 117 mg/dL" in text


@pytest.mark.browser
def test_browser_opens_the_sign_in_page(live_server, page):
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Your username and password")
