"""``python -m integrations.ivls_simulator --root DIR [--delay 3] [--seed N] [--once]``."""

from __future__ import annotations

import argparse
import codecs
import logging
import signal
import sys
import threading
from pathlib import Path

from .simulator import Simulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.ivls_simulator",
        description="Play IDEXX VetLab Station + InterLink on a folder tree: answer work "
        "requests in ROOT/Requests with result files in ROOT/Results/Data and PDFs in "
        "ROOT/Results/Reports.",
    )
    parser.add_argument("--root", required=True, type=Path, help="the InterLink folder tree")
    parser.add_argument("--delay", type=float, default=3.0, help="seconds before a run (3)")
    parser.add_argument("--seed", default="0", help="makes the values repeatable (0)")
    parser.add_argument("--once", action="store_true", help="handle what is there, then exit")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between looks (0.5)")
    parser.add_argument(
        "--ivls-run",
        action="store_true",
        help="also write one run started on the IVLS itself (a walk-in cat, SNAP FIV/FeLV): "
        "empty requisition number, client id and patient id",
    )
    parser.add_argument(
        "--corrections",
        action="store_true",
        help="after each result also write a Replace_Previous_Results with one value changed",
    )
    parser.add_argument("--encoding", default="UTF-8", help="file encoding, e.g. big5 (UTF-8)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        codecs.lookup(args.encoding)
    except LookupError:
        print(f"Unknown encoding {args.encoding!r}", file=sys.stderr)
        return 2
    seed = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    sim = Simulator(
        args.root,
        delay=args.delay,
        seed=seed,
        corrections=args.corrections,
        encoding=args.encoding,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim.ensure_folders()
    if args.ivls_run:
        sim.ivls_run()
    try:
        sim.serve(once=args.once, poll=args.poll, stop=stop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
