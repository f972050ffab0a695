"""Settings: an INI file (section ``[icp]``), then ``ICP_PASSWORD``, then flags."""

from __future__ import annotations

import argparse
import configparser
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

UNIT_LIST = re.compile(r"^\d+(,\d+)*$")


class ConfigError(Exception):
    """Settings that cannot work; the message says what to change."""


def default_interlink_root() -> Path:
    return Path(r"C:\IDEXX Interlink") if sys.platform == "win32" else Path("interlink")


@dataclass(frozen=True)
class Settings:
    password: str
    work_request_url: str
    results_url: str
    unit_id: str  # as sent: no spaces, e.g. "1,2"
    interlink_root: Path
    requests_dir: Path
    results_data_dir: Path
    results_reports_dir: Path
    archive_days: int = 30
    auto_send: bool = True
    poll_interval: float = 10.0
    settle_seconds: float = 2.0
    timeout: float = 30.0
    max_backoff: float = 120.0
    log_file: str = ""

    @property
    def api_base(self) -> str:
        """``.../api/ivls/v1/``: the folder the Results Service URL sits in."""
        return urljoin(self.results_url, "../")

    @property
    def reports_url(self) -> str:
        return urljoin(self.api_base, "reports/")

    @property
    def status_url(self) -> str:
        return urljoin(self.api_base, "status/")

    def ack_url(self, work_request_id: int) -> str:
        return urljoin(self.work_request_url, f"{work_request_id}/ack/")


# name in the INI file -> (argparse dest, kind)
KEYS = {
    "password": "str",
    "work_request_url": "str",
    "results_url": "str",
    "unit_id": "str",
    "archive_days": "int",
    "auto_send": "bool",
    "interlink_root": "str",
    "requests_dir": "str",
    "results_data_dir": "str",
    "results_reports_dir": "str",
    "poll_interval": "float",
    "settle_seconds": "float",
    "timeout": "float",
    "max_backoff": "float",
    "log_file": "str",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="INI file with an [icp] section")
    parser.add_argument("--password", help="the department's IVLS password (or ICP_PASSWORD)")
    parser.add_argument("--work-request-url", help="Work Request Service URL")
    parser.add_argument("--results-url", help="Results Service URL")
    parser.add_argument("--unit-id", help="Unit ID: one id or a comma list such as '1, 2'")
    parser.add_argument("--archive-days", type=int, help="days to keep uploaded files (30)")
    parser.add_argument(
        "--auto-send",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="upload result files (default: on)",
    )
    parser.add_argument("--interlink-root", help=r"InterLink folder (C:\IDEXX Interlink)")
    parser.add_argument("--requests-dir", help="default: <interlink_root>/Requests")
    parser.add_argument("--results-data-dir", help="default: <interlink_root>/Results/Data")
    parser.add_argument("--results-reports-dir", help="default: <interlink_root>/Results/Reports")
    parser.add_argument("--poll-interval", type=float, help="seconds between cycles (10)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        help="a result file must stay unchanged this long before upload (2)",
    )
    parser.add_argument("--timeout", type=float, help="HTTP timeout in seconds (30)")
    parser.add_argument("--max-backoff", type=float, help="longest wait after errors (120)")
    parser.add_argument("--log-file", help="also log to this file (rotated)")


def _read_file(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8-sig") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(f"Cannot read the settings file {path}: {exc.strerror or exc}") from exc
    except configparser.Error as exc:
        raise ConfigError(f"The settings file {path} is not valid: {exc}") from exc
    if not parser.has_section("icp"):
        raise ConfigError(f"The settings file {path} has no [icp] section")
    values = dict(parser.items("icp"))
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"Unknown setting(s) in {path}: {', '.join(unknown)}")
    return values


def _convert(name: str, kind: str, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError as exc:
        raise ConfigError(f"Setting {name} must be a number, not {raw!r}") from exc
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"Setting {name} must be yes or no, not {raw!r}")
    return text


def normalize_url(name: str, url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} must be a full http:// or https:// address, for example "
            f"https://pims.example.com/api/ivls/v1/work-requests/ (got {url!r})"
        )
    return url if url.endswith("/") else url + "/"


def load_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Merge the settings file, ``ICP_PASSWORD`` and flags (flags win)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    if getattr(args, "config", None):
        values.update(_read_file(Path(args.config)))
    if environ.get("ICP_PASSWORD"):
        values["password"] = environ["ICP_PASSWORD"]
    for key in KEYS:
        flag = getattr(args, key, None)
        if flag is not None:
            values[key] = flag
    values = {k: _convert(k, KEYS[k], v) for k, v in values.items()}

    problems = []
    for key, label in (
        ("password", "Password"),
        ("work_request_url", "Work Request Service URL (work_request_url)"),
        ("results_url", "Results Service URL (results_url)"),
        ("unit_id", "Unit ID (unit_id)"),
    ):
        if not values.get(key):
            problems.append(f"{label} is not set")
    if problems:
        raise ConfigError("; ".join(problems))

    unit_id = re.sub(r"\s+", "", str(values["unit_id"]))
    if not UNIT_LIST.match(unit_id):
        raise ConfigError(
            f"Unit ID must be a department number or a comma list such as '1, 2' "
            f"(got {values['unit_id']!r})"
        )
    root = Path(str(values.get("interlink_root") or default_interlink_root()))

    def folder(key: str, *default: str) -> Path:
        given = values.get(key)
        path = Path(str(given)) if given else Path(*default)
        return path if path.is_absolute() else root / path

    settings = Settings(
        password=str(values["password"]),
        work_request_url=normalize_url("Work Request Service URL", str(values["work_request_url"])),
        results_url=normalize_url("Results Service URL", str(values["results_url"])),
        unit_id=unit_id,
        interlink_root=root,
        requests_dir=folder("requests_dir", "Requests"),
        results_data_dir=folder("results_data_dir", "Results", "Data"),
        results_reports_dir=folder("results_reports_dir", "Results", "Reports"),
        archive_days=int(values.get("archive_days", 30)),  # type: ignore[arg-type]
        auto_send=bool(values.get("auto_send", True)),
        poll_interval=float(values.get("poll_interval", 10.0)),  # type: ignore[arg-type]
        settle_seconds=float(values.get("settle_seconds", 2.0)),  # type: ignore[arg-type]
        timeout=float(values.get("timeout", 30.0)),  # type: ignore[arg-type]
        max_backoff=float(values.get("max_backoff", 120.0)),  # type: ignore[arg-type]
        log_file=str(values.get("log_file") or ""),
    )
    if settings.poll_interval <= 0 or settings.settle_seconds < 0 or settings.timeout <= 0:
        raise ConfigError("poll_interval and timeout must be above 0, settle_seconds not below 0")
    return settings
