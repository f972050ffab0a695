"""The plug-in API on the embedded demo's SQLite: a real server process, driven over HTTP.

The rest of the suite runs on PostgreSQL; this starts gunicorn (two worker processes) on a
temporary SQLite database, with no Redis (tasks run in the web process), and checks that the
plug-in sees the same behaviour: poll, ack, post (two identical posts at the same instant
give one 201 and one 200), matching, reports and the authentication answers.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, free_port, manage, sqlite_env
from tests.integrations.helpers import pdf, result_xml

PASSWORD = "sqlite-demo-password"

SETUP = """
import json
from labs.services import referral_create
from tests.factories import ConsultationFactory, DepartmentFactory, ivls_item
department = DepartmentFactory(name="SQLite clinic")
consultation = ConsultationFactory(department=department)
referral = referral_create(
    consultation=consultation, items=[ivls_item(department, "GLU")]
)
patient = consultation.patient
print(json.dumps({
    "unit": department.pk, "number": referral.number, "patient_id": patient.pk,
    "client_id": patient.client_id, "patient_name": patient.name,
}))
"""


class Api:
    def __init__(self, base: str, unit: int, password: str = PASSWORD) -> None:
        self.base = base
        token = base64.b64encode(f"{unit}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    def call(self, method: str, path: str, body: bytes | None = None, **headers):
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers={**self.headers, **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def sqlite_server(tmp_path):
    env = sqlite_env(tmp_path, DEBUG="true")
    manage(env, "migrate", "--noinput", "-v0")
    setup = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    manage(env, "ivls_connection", str(setup["unit"]), "--enable", "--password", PASSWORD)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pims.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("gunicorn on SQLite did not start")
                time.sleep(0.3)
        yield base, setup
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_plugin_api_behaves_the_same_on_sqlite(sqlite_server):
    base, setup = sqlite_server
    api = Api(base + "/api/ivls/v1/", setup["unit"])

    status, headers, body = Api(base + "/api/ivls/v1/", setup["unit"], "wrong").call(
        "GET", "work-requests/"
    )
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="ivls"'
    assert body["error"]

    status, _, body = api.call("GET", "work-requests/?limit=10")
    assert status == 200
    [work_request] = body["work_requests"]
    assert work_request["requisition_number"] == str(setup["number"])
    for _ in range(2):
        status, _, body = api.call("POST", f"work-requests/{work_request['id']}/ack/", b"")
        assert (status, body) == (200, {"id": work_request["id"], "status": "delivered"})
    assert api.call("GET", "work-requests/")[2] == {"work_requests": [], "has_more": False}

    content = result_xml(
        requisition=str(setup["number"]),
        patient_id=str(setup["patient_id"]),
        client_id=str(setup["client_id"]),
        patient_name=setup["patient_name"],
    )
    barrier = threading.Barrier(2)
    answers = []

    def post():
        barrier.wait()
        answers.append(api.call("POST", "results/", content, **{"Content-Type": "application/xml"}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _, _ in answers) == [200, 201]
    assert {body["id"] for _, _, body in answers} == {answers[0][2]["id"]}
    file_id = answers[0][2]["id"]

    # No worker and no Redis: the file was matched in the web process after the commit.
    status, _, body = api.call("GET", f"results/{file_id}/")
    assert status == 200
    assert body["status"] == "matched" and body["requisition_number"] == str(setup["number"])

    status, _, body = api.call(
        "POST",
        "reports/",
        pdf(),
        **{"Content-Type": "application/pdf", "X-File-Name": "20261122_140311_17.pdf"},
    )
    assert (status, body["attached"]) == (201, True)

    status, _, body = api.call("POST", "results/", b"not xml", **{"Content-Type": "text/xml"})
    assert status == 422 and "not XML" in body["error"]

    status, _, body = api.call("GET", "status/")
    assert (status, body["units"], body["pending_work_requests"]) == (200, [setup["unit"]], 0)
    assert api.call("GET", "nothing/")[0] == 404
