"""HTTP calls to the PIMS's IVLS API (urllib only, HTTP Basic authentication)."""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message

from . import __version__
from .config import Settings


@dataclass
class Response:
    url: str
    status: int
    headers: Message | dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict | None:
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def error(self) -> str:
        """The server's ``{"error": ...}`` text, or the start of the body."""
        data = self.json()
        if data and isinstance(data.get("error"), str):
            return data["error"]
        text = self.body.decode("utf-8", errors="replace").strip()
        return " ".join(text.split())[:300]

    def retry_after(self, now: float | None = None) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``), if it did."""
        value = self.headers.get("Retry-After") if self.headers else None
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        now = time.time() if now is None else now
        return max(0.0, when.timestamp() - now)


class NetworkError(Exception):
    """The server could not be reached, or did not answer in time."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would turn an upload into a body-less GET; better to report it
    # so the URL in the settings can be corrected.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({reason.verify_message})"
    if isinstance(reason, socket.gaierror):
        return "the server name cannot be found (DNS)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "no answer in time"
    return str(getattr(reason, "strerror", None) or reason)


class IvlsClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        token = f"{settings.unit_id}:{settings.password}".encode()
        self._auth = "Basic " + base64.b64encode(token).decode("ascii")
        self._opener = urllib.request.build_opener(_NoRedirect)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One HTTP call. HTTP errors come back as a Response; no answer at all raises."""
        all_headers = {
            "Authorization": self._auth,
            "Accept": "application/json",
            "User-Agent": f"pims-icp-plugin/{__version__}",
            **(headers or {}),
        }
        # Only http(s) URLs from the settings get here: config.normalize_url checks them.
        req = urllib.request.Request(url, data=body, method=method, headers=all_headers)  # noqa: S310
        try:
            with self._opener.open(req, timeout=self.settings.timeout) as resp:
                return Response(url, resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read()
            except OSError:
                data = b""
            return Response(url, exc.code, exc.headers or {}, data)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise NetworkError(url, _reason(exc)) from exc

    def list_work_requests(self, limit: int = 100) -> Response:
        url = self.settings.work_request_url + "?" + urllib.parse.urlencode({"limit": limit})
        return self.request("GET", url)

    def ack(self, work_request_id: int) -> Response:
        return self.request("POST", self.settings.ack_url(work_request_id), body=b"")

    def status(self) -> Response:
        return self.request("GET", self.settings.status_url)

    def _upload(self, url: str, data: bytes, file_name: str, content_type: str) -> Response:
        # Header values travel as Latin-1; quote anything else.
        safe_name = file_name if file_name.isascii() else urllib.parse.quote(file_name)
        headers = {"Content-Type": content_type, "X-File-Name": safe_name}
        return self.request("POST", url, body=data, headers=headers)

    def post_result(self, data: bytes, file_name: str) -> Response:
        return self._upload(self.settings.results_url, data, file_name, "application/xml")

    def post_report(self, data: bytes, file_name: str) -> Response:
        return self._upload(self.settings.reports_url, data, file_name, "application/pdf")
