"""IVLS + InterLink played on a folder tree, for demos and end-to-end tests.

Watches ``Requests`` for work request files, "runs" each ``New`` after a
delay and writes what InterLink would: one result XML per instrument into
``Results/Data`` and the run's PDF into ``Results/Reports``. Handled request
files are moved to ``Requests/processed``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .catalog import analytes_by_instrument, load_catalog
from .interlink import (
    WorkRequest,
    interlink_time,
    ivls_run_request,
    local_now,
    make_diagnostic_set_id,
    make_pdf,
    make_result_xml,
    parse_work_request,
)

log = logging.getLogger("ivls_simulator")

# A request file that cannot be parsed may still be being written by someone
# else; it is given this long before it is set aside in Requests/error.
UNREADABLE_GRACE_SECONDS = 5.0


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see either no file or the whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def move_aside(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting anything there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}-{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    return target


@dataclass
class Pending:
    path: Path
    request: WorkRequest
    due: float


class Simulator:
    def __init__(
        self,
        root: Path,
        *,
        delay: float = 3.0,
        seed: int | str = 0,
        corrections: bool = False,
        encoding: str = "UTF-8",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = local_now,
    ) -> None:
        self.root = Path(root)
        self.requests_dir = self.root / "Requests"
        self.data_dir = self.root / "Results" / "Data"
        self.reports_dir = self.root / "Results" / "Reports"
        self.processed_dir = self.requests_dir / "processed"
        self.error_dir = self.requests_dir / "error"
        self.delay = delay
        self.seed = seed
        self.corrections = corrections
        self.encoding = encoding
        self.clock = clock
        self.wall_clock = wall_clock
        self.pending: dict[Path, Pending] = {}
        self._unreadable: dict[Path, float] = {}
        self._message_id = 0
        self._used_set_ids: set[str] = set()
        self.app_id = str(uuid.UUID(int=random.Random(f"ivls|{seed}").getrandbits(128)))  # noqa: S311

    def ensure_folders(self) -> None:
        for folder in (self.requests_dir, self.data_dir, self.reports_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # --- requests -------------------------------------------------------------------------

    def _request_files(self) -> list[Path]:
        try:
            entries = list(os.scandir(self.requests_dir))
        except FileNotFoundError:
            return []
        return [
            Path(e.path)
            for e in entries
            if e.is_file() and e.name.lower().endswith(".xml") and not e.name.startswith(".")
        ]

    def scan(self) -> None:
        """Read new request files, oldest first; queue each New, apply each Cancel."""
        found = []
        for path in self._request_files():
            if path in self.pending:
                continue
            try:
                stat = path.stat()
                request = parse_work_request(path.read_bytes())
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                self._unreadable_file(path, exc)
                continue
            self._unreadable.pop(path, None)
            order = int(request.message_id) if request.message_id.isdigit() else 0
            found.append((stat.st_mtime_ns, order, path.name, path, request))
        for _mtime, _order, _name, path, request in sorted(found, key=lambda f: f[:3]):
            if request.sub_type == "Cancel":
                self._cancel(path, request)
            else:
                self.pending[path] = Pending(path, request, self.clock() + self.delay)
                log.info(
                    "Work request %s (requisition %s, %s) is pending; runs in %.0f s",
                    path.name,
                    request.requisition_number,
                    " ".join(request.service_codes) or "no codes",
                    self.delay,
                )

    def _unreadable_file(self, path: Path, exc: Exception) -> None:
        first = self._unreadable.setdefault(path, self.clock())
        if self.clock() - first >= UNREADABLE_GRACE_SECONDS:
            target = move_aside(path, self.error_dir)
            self._unreadable.pop(path, None)
            log.error("%s is not a work request (%s); moved to %s", path.name, exc, target)

    def _cancel(self, path: Path, request: WorkRequest) -> None:
        cancelled = [
            p
            for p in self.pending.values()
            if p.request.requisition_number == request.requisition_number
        ]
        for p in cancelled:
            del self.pending[p.path]
            move_aside(p.path, self.processed_dir)
            log.info(
                "Cancelled pending work request %s (requisition %s) before it ran",
                p.path.name,
                request.requisition_number,
            )
        if not cancelled:
            log.info(
                "Cancel for requisition %s: nothing pending (already run or never received)",
                request.requisition_number,
            )
        move_aside(path, self.processed_dir)

    # --- runs -----------------------------------------------------------------------------

    def run_due(self, *, force: bool = False) -> list[Path]:
        """Run every pending request whose delay has passed; returns the files written."""
        written: list[Path] = []
        for path, pending in list(self.pending.items()):
            if not force and pending.due > self.clock():
                continue
            written += self.run(pending.request)
            del self.pending[path]
            if path.exists():
                move_aside(path, self.processed_dir)
        return written

    def _next_message_id(self) -> int:
        self._message_id += 1
        return self._message_id

    def _set_id(self, request: WorkRequest, now: dt.datetime) -> str:
        set_id = make_diagnostic_set_id(request, seed=self.seed, now=now)
        head, _, _ = set_id.rpartition("_")
        rng = random.Random(f"{self.seed}|{set_id}")  # noqa: S311
        while set_id in self._used_set_ids or (self.reports_dir / f"{set_id}.pdf").exists():
            set_id = f"{head}_{rng.randint(100, 99999)}"
        self._used_set_ids.add(set_id)
        return set_id

    def run(self, request: WorkRequest) -> list[Path]:
        """Write the results of one request: an XML per instrument, then the PDF."""
        groups, unknown = analytes_by_instrument(request.service_codes, load_catalog())
        if unknown:
            log.warning(
                "Requisition %s: codes %s are not in the catalogue; not run",
                request.requisition_number or "(none)",
                ", ".join(unknown),
            )
        if not groups:
            log.warning("Requisition %s: nothing to run", request.requisition_number or "(none)")
            return []
        now = self.wall_clock()
        set_id = self._set_id(request, now)
        written = []
        for instrument in groups:
            common = dict(
                seed=self.seed,
                encoding=self.encoding,
                now=now,
                instrument=instrument,
                diagnostic_set_id=set_id,
                from_application_id=self.app_id,
            )
            path = self.data_dir / f"{set_id}_{instrument}.xml"
            write_atomic(
                path, make_result_xml(request, message_id=self._next_message_id(), **common)
            )
            written.append(path)
            log.info(
                "Wrote %s results for requisition %s: %s",
                instrument,
                request.requisition_number or "(IVLS run)",
                path,
            )
            if self.corrections:
                fixed = self.data_dir / f"{set_id}_{instrument}_corrected.xml"
                xml = make_result_xml(
                    request,
                    message_id=self._next_message_id(),
                    sub_type="Replace_Previous_Results",
                    **common,
                )
                write_atomic(fixed, xml)
                written.append(fixed)
                log.info("Wrote a corrected %s run: %s", instrument, fixed)
        report = self.reports_dir / f"{set_id}.pdf"
        write_atomic(
            report,
            make_pdf(
                [
                    "IDEXX VetLab Station - simulated report",
                    f"Diagnostic set {set_id}   run {interlink_time(now)}",
                    f"Requisition {request.requisition_number or '-'}   "
                    f"patient {request.patient_name} ({request.species})",
                    "Instruments: " + ", ".join(groups),
                ]
            ),
        )
        written.append(report)
        return written

    def ivls_run(
        self, *, codes: tuple[str, ...] = ("SNAPFF",), species: str = "FELINE"
    ) -> list[Path]:
        """A run started on the IVLS, for a walk-in patient with no work request."""
        return self.run(ivls_run_request(codes=codes, species=species))

    # --- loop -----------------------------------------------------------------------------

    def serve(
        self,
        *,
        once: bool = False,
        poll: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        """Watch until stopped; with ``once``, handle what is there now and return."""
        stop = stop or threading.Event()
        self.ensure_folders()
        self.scan()
        while not stop.is_set():
            self.run_due()
            if once and not self.pending:
                return
            stop.wait(poll)
            self.scan()
