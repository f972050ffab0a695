"""Serve the PIMS with everything it needs on one machine, stopped together by Ctrl-C.

Always: the web server. With DATABASE_URL and REDIS_URL set: a Celery worker and beat.
With --demo-loop 1 (the default of ``make run``): the IVLS plug-in and the IVLS simulator
against the demo practice, so an order placed in the browser comes back with results.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from pims import demo


class Command(BaseCommand):
    help = "Run the web server (and worker, beat, plug-in and simulator where configured)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--demo-loop", type=int, choices=[0, 1], default=1)

    def handle(self, *args, host, port, demo_loop, **options):
        python = sys.executable
        base = f"http://{host}:{port}"
        procs: list[tuple[str, list[str]]] = [
            ("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]),
        ]
        if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
            beat_schedule = settings.VAR_DIR / "celerybeat-schedule"
            procs += [
                ("worker", [python, "-m", "celery", "-A", "pims", "worker", "-l", "info"]),
                (
                    "beat",
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "pims",
                        "beat",
                        "-l",
                        "info",
                        "-s",
                        str(beat_schedule),
                    ],
                ),
            ]
        if demo_loop:
            root = Path(settings.VAR_DIR) / "interlink"
            for folder in ("Requests", "Results/Data", "Results/Reports"):
                (root / folder).mkdir(parents=True, exist_ok=True)
            procs += [
                ("simulator", [python, "-m", "integrations.ivls_simulator", "--root", str(root)]),
                ("plug-in", demo.plugin_command(python, base, root)),
            ]

        def stop(signum, frame):
            raise KeyboardInterrupt

        # Ctrl-C reaches the whole process group; a SIGTERM or SIGHUP to this process alone
        # (a supervisor, a closed terminal) must stop the children too.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, stop)
        children: list[tuple[str, subprocess.Popen]] = []
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        for name, cmd in procs:
            self.stdout.write(f"starting {name}: {' '.join(cmd)}")
            children.append((name, subprocess.Popen(cmd, cwd=settings.BASE_DIR)))  # noqa: S603

        self.stdout.write(
            self.style.SUCCESS(f"\nThe PIMS is at {base}/  (Ctrl-C stops everything)\n")
        )
        if demo_loop:
            self.stdout.write(
                "The demo lab loop runs: referrals with IVLS analyses get simulated results.\n"
                "Run `make run DEMO_LOOP=0` to serve the site alone.\n"
            )
        try:
            while True:
                for name, child in children:
                    if child.poll() is not None:
                        self.stderr.write(
                            f"{name} stopped (exit {child.returncode}); stopping all."
                        )
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for _, child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
