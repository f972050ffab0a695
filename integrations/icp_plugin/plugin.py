"""One plug-in cycle: fetch work requests, upload results and reports, prune archives.

Nothing is lost or sent twice across a crash or kill:

- a work request is acknowledged only after its file is durably in
  ``Requests`` (until then the server keeps offering it, and rewriting the
  same file is harmless);
- a result file is moved out of ``Results/Data`` only after the server has
  answered 2xx (it is then stored); a crash between the two means one more
  upload, which the server answers with ``duplicate``;
- result files are never deleted, only moved, except archive folders older
  than ``archive_days``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from .client import IvlsClient, NetworkError, Response
from .config import Settings
from .files import (
    SettleTracker,
    candidate_files,
    describe_os_error,
    is_plain_xml_name,
    local_today,
    move_no_clobber,
    prune_archive,
    write_atomic,
)

log = logging.getLogger("icp_plugin")

_DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
REPEAT_PROBLEM_SECONDS = 15 * 60


class Backoff:
    """Waits after server trouble: 5 s, 10 s, 20 s, ... up to ``cap``, or as told."""

    def __init__(self, *, cap: float, clock: Callable[[], float], base: float = 5.0) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.clock = clock
        self.failures = 0
        self.until = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.until

    def remaining(self) -> float:
        return max(0.0, self.until - self.clock())

    def fail(self, retry_after: float | None = None) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** min(self.failures - 1, 20))
        if retry_after is not None:
            # The server knows best (429 windows, maintenance); a day at most.
            delay = min(max(retry_after, 1.0), 86_400.0)
        self.until = self.clock() + delay
        return delay

    def succeed(self) -> None:
        self.failures = 0
        self.until = 0.0


class Problems:
    """Logs a lasting problem once (and again every 15 minutes), and when it clears."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._active: dict[str, float] = {}
        self.count = 0  # problems reported in this cycle

    def report(self, key: str, message: str, level: int = logging.ERROR) -> None:
        self.count += 1
        last = self._active.get(key)
        now = self.clock()
        if last is None or now - last >= REPEAT_PROBLEM_SECONDS:
            self._active[key] = now
            log.log(level, message)
        else:
            log.debug(message)

    def clear(self, key: str, message: str | None = None) -> None:
        if self._active.pop(key, None) is not None and message:
            log.info(message)

    def clear_prefix(self, prefix: str, message: str | None = None) -> None:
        keys = [k for k in self._active if k.startswith(prefix)]
        for key in keys:
            del self._active[key]
        if keys and message:
            log.info(message)


def _encode_request(xml: str) -> bytes:
    """The work request text as bytes in the encoding its declaration names."""
    match = _DECLARED_ENCODING.match(xml[:200])
    encoding = match.group(1) if match else "utf-8"
    try:
        return xml.encode(encoding, errors="xmlcharrefreplace")
    except LookupError:
        return xml.encode("utf-8")


def describe_failure(
    resp: Response | None, exc: NetworkError | None, *, units: str, setting: str
) -> str:
    """What went wrong talking to the server, and what to do about it."""
    if exc is not None:
        return (
            f"Cannot reach {exc.url} ({exc.reason}): is the PIMS running, and is the "
            f"{setting} setting right?"
        )
    if resp is None:
        return "No answer."
    code = resp.status
    if code == 401:
        return (
            f"The server refused the password for unit(s) {units}: check the Password "
            f"setting (and the Unit ID) against the department's IVLS settings page in the PIMS."
        )
    if code == 403:
        return (
            f"The server refused unit(s) {units}: {resp.error}. Enable the IVLS connection "
            f"on the department's IVLS settings page in the PIMS, or remove the unit from the "
            f"Unit ID setting."
        )
    if code == 429:
        return (
            f"The server is refusing unit(s) {units} for now after too many wrong passwords "
            f"from this computer: check the Password setting."
        )
    if code == 404:
        return (
            f"{resp.url} does not exist on the server (HTTP 404): check the {setting} "
            f"setting; copy it from the department's IVLS settings page in the PIMS."
        )
    if 300 <= code < 400:
        location = resp.headers.get("Location", "?") if resp.headers else "?"
        return (
            f"{resp.url} redirects to {location}: put the new address in the {setting} "
            f"setting (usually https:// instead of http://)."
        )
    if code >= 500:
        return f"The PIMS had a problem (HTTP {code} at {resp.url}: {resp.error or 'no detail'})."
    return f"Unexpected answer HTTP {code} from {resp.url}: {resp.error or 'no detail'}."


class Plugin:
    def __init__(
        self,
        settings: Settings,
        *,
        client: IvlsClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        today: Callable[[], dt.date] = local_today,
    ) -> None:
        self.settings = settings
        self.client = client or IvlsClient(settings)
        self.clock = clock
        self.sleep = sleep
        self.today = today
        self.backoff = Backoff(cap=settings.max_backoff, clock=clock)
        self.problems = Problems(clock)
        self.settle = SettleTracker(settings.settle_seconds, clock)
        self._too_big: dict[Path, tuple[int, int, float]] = {}
        self._pruned_on: dt.date | None = None

    @property
    def units(self) -> str:
        return self.settings.unit_id

    # --- the cycle ------------------------------------------------------------------------

    def run_cycle(self) -> int:
        """One pass; returns how many problems it met (0: all well)."""
        self.problems.count = 0
        if self.backoff.ready():
            self.fetch_work_requests()
        else:
            log.debug("Waiting %.0f s more after server trouble", self.backoff.remaining())
        if self.settings.auto_send and self.backoff.ready():
            self.upload_files()
        self.prune()
        return self.problems.count

    # --- server trouble -------------------------------------------------------------------

    def _server_trouble(
        self, resp: Response | None, exc: NetworkError | None, setting: str
    ) -> None:
        """Log what went wrong talking to the server in actionable words, and back off."""
        if exc is not None:
            delay = self.backoff.fail()
            key = "server:network"
        elif resp is not None:
            delay = self.backoff.fail(resp.retry_after() if resp.status in (429, 503) else None)
            key = f"server:{resp.status}"
        else:
            return
        message = describe_failure(resp, exc, units=self.units, setting=setting)
        self.problems.report(
            key, f"{message} Files stay where they are; trying again in {delay:.0f} s."
        )

    def _server_fine(self) -> None:
        self.backoff.succeed()
        self.problems.clear_prefix("server:", "The connection to the PIMS works again.")

    # --- work requests --------------------------------------------------------------------

    def fetch_work_requests(self, max_pages: int = 20) -> None:
        setting = "Work Request Service URL"
        for _page in range(max_pages):
            try:
                resp = self.client.list_work_requests()
            except NetworkError as exc:
                self._server_trouble(None, exc, setting)
                return
            if resp.status != 200:
                self._server_trouble(resp, None, setting)
                return
            data = resp.json()
            items = data.get("work_requests") if data else None
            if not isinstance(items, list):
                delay = self.backoff.fail()
                self.problems.report(
                    "server:shape",
                    f"{resp.url} did not answer with a work request list: is the {setting} "
                    f"setting pointing at the PIMS? Trying again in {delay:.0f} s.",
                )
                return
            self._server_fine()
            delivered = 0
            for item in items:
                outcome = self.deliver(item)
                if outcome == "stop":
                    return
                delivered += outcome == "delivered"
            if not data.get("has_more") or not delivered:
                return

    def deliver(self, item: object) -> str:
        """Write one work request into Requests, then ack it: delivered, skipped or stop."""
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            self.problems.report("wr:shape", f"Ignoring a malformed work request: {item!r:.200}")
            return "skipped"
        wr_id = item["id"]
        file_name = item.get("file_name")
        xml = item.get("xml")
        if not is_plain_xml_name(file_name) or not isinstance(xml, str) or not xml.strip():
            self.problems.report(
                f"wr:refused:{wr_id}",
                f"Refused work request {wr_id}: its file name {file_name!r} is not a plain "
                f".xml file name (or it has no XML). Nothing was written and it was not "
                f"acknowledged; report this to the PIMS supplier.",
            )
            return "skipped"
        folder = self.settings.requests_dir
        target = folder / file_name
        try:
            write_atomic(target, _encode_request(xml))
        except OSError as exc:
            self.problems.report(
                "wr:write",
                f"Cannot write to folder {folder}: {describe_os_error(exc)}. Work request "
                f"{wr_id} was not acknowledged; it will be fetched again. Check the "
                f"interlink_root / requests_dir setting and the folder's permissions.",
            )
            return "stop"
        self.problems.clear("wr:write", f"Writing to {folder} works again.")
        try:
            resp = self.client.ack(wr_id)
        except NetworkError as exc:
            self._server_trouble(None, exc, "Work Request Service URL")
            return "stop"
        if resp.status == 404:
            log.warning(
                "Wrote %s, but the server no longer knows work request %s (HTTP 404); "
                "leaving the file for the IVLS.",
                target,
                wr_id,
            )
            return "skipped"
        if not resp.ok:
            # The file stays; the request is served again and rewritten, then acked.
            self._server_trouble(resp, None, "Work Request Service URL")
            return "stop"
        log.info(
            "Delivered work request %s (%s, requisition %s) to %s",
            wr_id,
            item.get("action", "?"),
            item.get("requisition_number", "?"),
            target,
        )
        return "delivered"

    # --- results --------------------------------------------------------------------------

    def _list(self, folder: Path, suffix: str, what: str) -> list[Path]:
        try:
            files = candidate_files(folder, suffix)
        except OSError as exc:
            self.problems.report(
                f"list:{folder}",
                f"Cannot read the {what} folder {folder}: {describe_os_error(exc)}. Check the "
                f"interlink_root setting and the folder's permissions.",
            )
            return []
        self.problems.clear(f"list:{folder}", f"Reading {folder} works again.")
        return files

    def ready_files(self) -> tuple[list[Path], list[Path]]:
        """Result XMLs and report PDFs that have stopped changing, each oldest first."""
        data = self._list(self.settings.results_data_dir, ".xml", "results")
        reports = self._list(self.settings.results_reports_dir, ".pdf", "reports")
        everything = data + reports
        self.settle.keep_only(set(everything))
        settled, wait = self.settle.look(everything)
        if wait is not None and wait <= self.settings.settle_seconds + 0.5:
            # Take the second look now rather than a whole poll interval later.
            self.sleep(wait)
            settled, _ = self.settle.look(everything)
        ready = set(settled)
        return [p for p in data if p in ready], [p for p in reports if p in ready]

    def upload_files(self) -> None:
        data, reports = self.ready_files()
        for path in data:
            if not self.backoff.ready() or not self.upload(path, report=False):
                return
        for path in reports:
            if not self.backoff.ready() or not self.upload(path, report=True):
                return

    def _held_back(self, path: Path) -> bool:
        held = self._too_big.get(path)
        if held is None:
            return False
        try:
            stat = path.stat()
        except OSError:
            self._too_big.pop(path, None)
            return True
        size, mtime_ns, until = held
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns) or self.clock() >= until:
            del self._too_big[path]
            return False
        return True

    def upload(self, path: Path, *, report: bool) -> bool:
        """Send one file and file it away; False when the server is in trouble (stop)."""
        if self._held_back(path):
            return True
        kind = "report" if report else "result file"
        folder = path.parent
        try:
            data = path.read_bytes()
            stat = path.stat()
        except FileNotFoundError:
            return True
        except OSError as exc:
            self.problems.report(
                f"read:{path}", f"Cannot read {path}: {describe_os_error(exc)}; skipping it."
            )
            return True
        setting = "Results Service URL"
        try:
            if report:
                resp = self.client.post_report(data, path.name)
            else:
                resp = self.client.post_result(data, path.name)
        except NetworkError as exc:
            self._server_trouble(None, exc, setting)
            return False
        if resp.status in (200, 201):
            self._server_fine()
            answer = resp.json() or {}
            archive = folder / "archive" / self.today().isoformat()
            self._file_away(path, archive, f"Sent {kind} {path.name}")
            log.info(
                "Sent %s %s: %s (id %s)",
                kind,
                path.name,
                answer.get("status", "stored"),
                answer.get("id", "?"),
            )
            return True
        if resp.status == 422:
            self._server_fine()
            target = self._file_away(path, folder / "failed", f"The PIMS rejected {path.name}")
            if target is not None:
                try:
                    target.with_name(target.name + ".error.txt").write_text(
                        f"HTTP 422 from {resp.url}\n{resp.error}\n", encoding="utf-8"
                    )
                except OSError:
                    pass
            self.problems.report(
                f"422:{path}",
                f"The PIMS rejected {kind} {path.name}: {resp.error}. Moved it to "
                f"{target or folder / 'failed'}; it will not be sent again. Pass it on to the "
                f"PIMS supplier.",
            )
            return True
        if resp.status == 413:
            self._server_fine()
            hold = self.settings.max_backoff * 10
            self._too_big[path] = (stat.st_size, stat.st_mtime_ns, self.clock() + hold)
            self.problems.report(
                f"413:{path}",
                f"{path.name} ({stat.st_size:,} bytes) is larger than the PIMS accepts (HTTP "
                f"413); it stays in {folder} and will be tried again in {hold:.0f} s. Ask the "
                f"PIMS supplier to raise the limit.",
            )
            return True
        self._server_trouble(resp, None, setting)
        return False

    def _file_away(self, path: Path, folder: Path, what: str) -> Path | None:
        try:
            target = move_no_clobber(path, folder)
        except OSError as exc:
            self.problems.report(
                f"move:{path}",
                f"{what}, but cannot move it into {folder}: {describe_os_error(exc)}. It will "
                f"be sent again (the PIMS answers 'duplicate'); check the folder's permissions.",
            )
            return None
        self.settle.forget(path)
        self._too_big.pop(path, None)
        return target

    # --- archive --------------------------------------------------------------------------

    def prune(self, *, force: bool = False) -> list[Path]:
        today = self.today()
        if not force and self._pruned_on == today:
            return []
        self._pruned_on = today
        removed: list[Path] = []
        for base in (self.settings.results_data_dir, self.settings.results_reports_dir):
            archive = base / "archive"
            try:
                gone = prune_archive(archive, self.settings.archive_days, today)
            except OSError as exc:
                self.problems.report(
                    f"prune:{archive}",
                    f"Cannot remove old folders in {archive}: {describe_os_error(exc)}.",
                    level=logging.WARNING,
                )
                continue
            for folder in gone:
                log.info(
                    "Removed %s (archive older than %s days)", folder, self.settings.archive_days
                )
            removed += gone
        return removed
