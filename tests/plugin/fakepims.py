"""A tiny stand-in for the PIMS's IVLS API (see ICP-API.md), for plug-in tests.

Implements what the plug-in uses: Basic auth (401/403), the work request
list and ack, results (201/200 duplicate/422), reports, status, and can be
told to answer the next uploads with a given status (503, 413, 429, ...).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DET

API = "/api/ivls/v1/"
PASSWORD = "correct-horse-battery"


def work_request_xml(
    wr_id: int,
    requisition: str,
    codes: tuple[str, ...] = ("CHEM17", "SDMA"),
    *,
    action: str = "New",
    species: str = "CANINE",
    client_id: str = "311",
    patient_id: str = "1207",
    first_name: str = "Maria",
    last_name: str = "Virtanen",
    patient_name: str = "Rosa",
) -> str:
    """A work_request_20 file as the contract shows it."""

    def a(text: str) -> str:
        return escape(text, {'"': "&quot;"})

    services = "\n".join(
        f"      <service_add><service_cd>{escape(c)}</service_cd></service_add>" for c in codes
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<message message_id="{wr_id}" message_dt="11/22/2026 02:03:11 PM"
         message_type="Work_Request" message_sub_type="{action}"
         message_dtd_version_number="2.0">
  <header>
    <from_application_id>pims-test</from_application_id>
    <to_application_id></to_application_id>
  </header>
  <body>
    <work_request requisition_number="{a(requisition)}">
      <client client_id="{a(client_id)}">
        <first_name>{escape(first_name)}</first_name>
        <last_name>{escape(last_name)}</last_name>
      </client>
      <patient patient_id="{a(patient_id)}" patient_species="{species}"
               patient_gender="FEMALE_SPAYED">
        <patient_name>{escape(patient_name)}</patient_name>
        <patient_breed>Labrador Retriever</patient_breed>
        <patient_birth_dt>03/14/2019</patient_birth_dt>
        <patient_weight patient_weight_uom="kgs"><weight>27.4</weight></patient_weight>
      </patient>
      <doctor>
        <first_name>Anna</first_name>
        <last_name>Korhonen</last_name>
      </doctor>
{services}
    </work_request>
  </body>
</message>
"""


@dataclass
class Upload:
    kind: str  # "result" or "report"
    body: bytes
    file_name: str
    content_type: str
    status: int


@dataclass
class FakePims:
    password: str = PASSWORD
    units: set[int] = field(default_factory=lambda: {1, 2})
    disabled: set[int] = field(default_factory=set)
    requests_dir: Path | None = None  # where acked files must already be
    work_requests: list[dict] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    file_on_disk_at_ack: dict[int, bool] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    forced: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, username
    _digests: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    # --- set-up ---------------------------------------------------------------------------

    def add_work_request(self, wr_id: int, requisition: str, **kwargs) -> dict:
        item = {
            "id": wr_id,
            "unit_id": 1,
            "requisition_number": requisition,
            "action": kwargs.get("action", "New"),
            "created_at": "2026-11-22T14:03:11.120Z",
            "file_name": kwargs.pop("file_name", f"WR-{wr_id}.xml"),
            "xml": kwargs.pop("xml", None) or work_request_xml(wr_id, requisition, **kwargs),
        }
        self.work_requests.append(item)
        return item

    def pending(self) -> list[dict]:
        return [w for w in self.work_requests if w["id"] not in self.acked]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def work_request_url(self) -> str:
        return self.base + API + "work-requests/"

    @property
    def results_url(self) -> str:
        return self.base + API + "results/"

    def uploads_of(self, kind: str, status: int | None = None) -> list[Upload]:
        return [u for u in self.uploads if u.kind == kind and status in (None, u.status)]

    def start(self, port: int = 0) -> FakePims:
        pims = self

        class Handler(_Handler):
            app = pims

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- the API --------------------------------------------------------------------------

    def authenticate(self, header: str | None) -> tuple[int, dict, list[int]]:
        unauthorized = (401, {"error": "Unit ID or password not accepted."}, [])
        if not header or not header.startswith("Basic "):
            return unauthorized
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return unauthorized
        if not re.fullmatch(r"\d+(,\d+)*", user):
            return unauthorized
        units = [int(u) for u in user.split(",")]
        if any(u not in self.units for u in units) or password != self.password:
            return unauthorized
        for unit in units:
            if unit in self.disabled:
                return 403, {"error": f"The IVLS connection of unit {unit} is disabled."}, []
        return 200, {}, units

    def handle(self, method: str, url: str, headers, body: bytes):
        parts = urlsplit(url)
        auth = headers.get("Authorization") or ""
        user = ""
        if auth.startswith("Basic "):
            user = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")[0]
        with self._lock:
            self.calls.append((method, parts.path, user))
            status, error, units = self.authenticate(auth)
            if status != 200:
                extra = {"WWW-Authenticate": 'Basic realm="ivls"'} if status == 401 else {}
                return status, error, extra
            path = parts.path
            if method == "GET" and path == API + "work-requests/":
                limit = int(parse_qs(parts.query).get("limit", ["100"])[0])
                pending = self.pending()
                return (
                    200,
                    {"work_requests": pending[:limit], "has_more": len(pending) > limit},
                    {},
                )
            match = re.fullmatch(API + r"work-requests/(\d+)/ack/", path)
            if method == "POST" and match:
                wr_id = int(match.group(1))
                item = next((w for w in self.work_requests if w["id"] == wr_id), None)
                if item is None:
                    return 404, {"error": "No such work request."}, {}
                if self.requests_dir is not None:
                    on_disk = (self.requests_dir / item["file_name"]).is_file()
                    self.file_on_disk_at_ack.setdefault(wr_id, on_disk)
                if wr_id not in self.acked:
                    self.acked.append(wr_id)
                return 200, {"id": wr_id, "status": "delivered"}, {}
            if method == "GET" and path == API + "status/":
                return (
                    200,
                    {
                        "units": units,
                        "server_time": dt.datetime.now(dt.UTC).isoformat(),
                        "pending_work_requests": len(self.pending()),
                    },
                    {},
                )
            if method == "POST" and path in (API + "results/", API + "reports/"):
                kind = "result" if path.endswith("results/") else "report"
                status, answer, extra = self._upload(kind, headers, body)
                self.uploads.append(
                    Upload(
                        kind,
                        body,
                        headers.get("X-File-Name", ""),
                        headers.get("Content-Type", ""),
                        status,
                    )
                )
                return status, answer, extra
            return 404, {"error": "Not found."}, {}

    def _upload(self, kind: str, headers, body: bytes):
        if self.forced:
            status, extra = self.forced.pop(0)
            return status, {"error": f"forced {status}"}, extra
        if kind == "result":
            problem = _result_problem(body)
        else:
            problem = None if body.startswith(b"%PDF-") else "The report is not a PDF."
        if problem:
            return 422, {"error": problem}, {}
        key = (kind, hashlib.sha256(body).hexdigest())
        if key in self._digests:
            return 200, {"status": "duplicate", "id": self._digests[key]}, {}
        self._digests[key] = len(self._digests) + 1
        return 201, {"status": "accepted", "id": self._digests[key]}, {}


def _result_problem(body: bytes) -> str | None:
    match = re.match(rb"""\s*<\?xml[^>]*encoding=["']([\w.-]+)["']""", body)
    try:
        text = body.decode(match.group(1).decode() if match else "utf-8")
        root = DET.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1))
    except Exception as exc:  # anything unreadable is a 422 here
        return f"The file is not XML: {exc}"
    if root.tag != "message":
        return "The root element is not an InterLink message."
    if root.get("message_type") == "Result" and root.find("body/result") is None:
        return "A Result message without a result element."
    return None


class _Handler(BaseHTTPRequestHandler):
    app: FakePims

    def log_message(self, format, *args):
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, answer, extra = self.app.handle(method, self.path, self.headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")
