"""``--check``: is everything in place? One line per check, OK or FAIL and what to do."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .client import IvlsClient, NetworkError
from .config import Settings
from .files import describe_os_error
from .plugin import describe_failure


def _folder_problem(folder: Path) -> str | None:
    """None when ``folder`` exists and a file can be written and removed in it."""
    if not folder.exists():
        return "it does not exist: check the interlink_root setting (is InterLink installed?)"
    if not folder.is_dir():
        return "it is a file, not a folder: check the interlink_root setting"
    probe = folder / f".icp-check-{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"icp plug-in write test\n")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        return (
            f"cannot write to it ({describe_os_error(exc)}): give the account the plug-in "
            f"runs as permission to change files there"
        )
    return None


def run_check(
    settings: Settings,
    *,
    client: IvlsClient | None = None,
    out: Callable[[str], object] = print,
) -> int:
    """Print each check; returns 0 when all passed, 1 otherwise."""
    client = client or IvlsClient(settings)
    failed = 0

    def line(ok: bool, text: str) -> None:
        nonlocal failed
        failed += not ok
        out(f"{'OK  ' if ok else 'FAIL'} {text}")

    line(
        True,
        f"Settings: unit(s) {settings.unit_id}, InterLink folder {settings.interlink_root}, "
        f"result upload {'on' if settings.auto_send else 'OFF (auto_send = no)'}, "
        f"archive kept {settings.archive_days} days",
    )

    if not settings.results_url.rstrip("/").endswith("/results"):
        line(
            False,
            f"Results Service URL {settings.results_url}: it should end in "
            f"/api/ivls/v1/results/ ; copy it from the department's IVLS settings page",
        )

    wr_setting = "Work Request Service URL"
    try:
        resp = client.list_work_requests(limit=1)
    except NetworkError as exc:
        line(False, f"{wr_setting}: " + describe_failure(None, exc, units="", setting=wr_setting))
    else:
        data = resp.json() if resp.status == 200 else None
        if data is not None and isinstance(data.get("work_requests"), list):
            line(True, f"{wr_setting} {settings.work_request_url} answers")
        elif resp.status == 200:
            line(
                False,
                f"{wr_setting} {settings.work_request_url} answered, but not with a work "
                f"request list: copy the URL from the department's IVLS settings page",
            )
        else:
            text = describe_failure(resp, None, units=settings.unit_id, setting=wr_setting)
            line(False, f"{wr_setting}: {text}")

    r_setting = "Results Service URL"
    try:
        resp = client.status()
    except NetworkError as exc:
        line(False, f"{r_setting}: " + describe_failure(None, exc, units="", setting=r_setting))
    else:
        data = resp.json() if resp.status == 200 else None
        if data is not None and "units" in data:
            line(
                True,
                f"Password accepted for unit(s) {settings.unit_id} at {settings.status_url} "
                f"(server time {data.get('server_time', '?')}, "
                f"{data.get('pending_work_requests', '?')} work request(s) waiting)",
            )
        else:
            text = describe_failure(resp, None, units=settings.unit_id, setting=r_setting)
            line(False, f"{settings.status_url}: {text}")

    for label, folder in (
        ("Requests folder", settings.requests_dir),
        ("Results data folder", settings.results_data_dir),
        ("Results reports folder", settings.results_reports_dir),
    ):
        problem = _folder_problem(folder)
        if problem is None:
            line(True, f"{label} {folder} exists and is writable")
        else:
            line(False, f"{label} {folder}: {problem}")

    out("All checks passed." if not failed else f"{failed} check(s) failed.")
    return 0 if not failed else 1
