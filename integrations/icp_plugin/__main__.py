"""``python -m integrations.icp_plugin [--config icp.ini] [--once | --check]``."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import signal
import sys
import threading

from . import __version__
from .check import run_check
from .config import ConfigError, Settings, add_arguments, load_settings
from .files import remove_stale_temp_files
from .plugin import Plugin

log = logging.getLogger("icp_plugin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.icp_plugin",
        description="InterLink Cloud Plug-in: writes the PIMS's work requests into InterLink's "
        "Requests folder and uploads the result files and reports InterLink writes.",
    )
    add_arguments(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one cycle, then exit")
    mode.add_argument(
        "--check", action="store_true", help="check URLs, password and folders, then exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def setup_logging(settings: Settings | None, verbose: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if settings and settings.log_file:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.log_file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
            )
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        if args.check:
            print(f"FAIL Settings: {exc}")
        else:
            print(f"Settings problem: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return run_check(settings)

    setup_logging(settings, args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if hasattr(signal, "SIGBREAK"):  # Windows console Ctrl+Break
        signal.signal(signal.SIGBREAK, lambda *_: stop.set())

    plugin = Plugin(settings, sleep=stop.wait)
    remove_stale_temp_files(settings.requests_dir)
    log.info(
        "ICP plug-in %s for unit(s) %s: requests to %s, results from %s and %s%s",
        __version__,
        settings.unit_id,
        settings.requests_dir,
        settings.results_data_dir,
        settings.results_reports_dir,
        "" if settings.auto_send else " (result upload is OFF)",
    )
    try:
        while True:
            try:
                problems = plugin.run_cycle()
            except Exception:
                # Keep serving the clinic; the traceback is for the PIMS supplier.
                log.exception("Unexpected error in the plug-in; carrying on")
                problems = 1
            if args.once:
                return 1 if problems else 0
            if stop.wait(max(settings.poll_interval, plugin.backoff.remaining())):
                break
    except KeyboardInterrupt:
        pass
    log.info("ICP plug-in stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
