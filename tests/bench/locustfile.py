"""Locust users for ``tests.bench.run`` (run headless, one measurement per locust process).

Configured by the environment the runner sets:

- ``BENCH_PATH``: the path ``PollUser`` GETs; ``BENCH_CREDENTIALS``: a JSON list of
  ``[username, password]`` pairs handed out to users in turn (empty: no authentication);
- ``BENCH_FILES``: a JSON manifest ``[{"path": ..., "unit": ...}]`` of result files that
  ``ResultPostUser`` POSTs once each, with the department's credentials;
- ``BENCH_OUT``: where to write every request's timing when locust quits.

Timings are kept raw (wall-clock end and duration of each request) so the runner computes
exact percentiles and the rate over the span the requests actually took.
"""

import base64
import itertools
import json
import os
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, events, task

_samples: list[tuple[float, float, int]] = []  # (wall end, milliseconds, status)
_user_numbers = itertools.count()


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, **kwargs):
    status = getattr(response, "status_code", 0) or 0
    _samples.append((time.time(), float(response_time), int(status)))


@events.quitting.add_listener
def _write(environment, **kwargs):
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps({"samples": _samples}))


class PollUser(FastHttpUser):
    """GETs one path as fast as it is answered (a closed loop: no think time)."""

    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self):
        credentials = json.loads(os.environ.get("BENCH_CREDENTIALS") or "[]")
        self.headers = {}
        if credentials:
            username, password = credentials[next(_user_numbers) % len(credentials)]
            self.headers["Authorization"] = _basic(username, password)
        self.path = os.environ["BENCH_PATH"]

    @task
    def get(self):
        with self.client.get(self.path, headers=self.headers, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


class _Files:
    def __init__(self):
        manifest = json.loads(Path(os.environ["BENCH_FILES"]).read_text())
        self.items = [(Path(m["path"]).read_bytes(), str(m["unit"])) for m in manifest]
        self.names = [Path(m["path"]).name for m in manifest]
        self.next = 0
        self.idle = 0


_files: _Files | None = None


class ResultPostUser(FastHttpUser):
    """POSTs result files as the plug-in does, each file once; locust stops when the
    last user finds none left."""

    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self):
        global _files
        if _files is None:
            _files = _Files()
        self.password = os.environ["BENCH_PASSWORD"]

    @task
    def post(self):
        files = _files
        if files.next >= len(files.items):
            if not getattr(self, "done", False):
                self.done = True
                files.idle += 1
                if files.idle == self.environment.runner.user_count:
                    gevent.spawn(self.environment.runner.quit)
            gevent.sleep(0.5)
            return
        index = files.next
        files.next += 1  # gevent switches only on I/O, so this claim is not raced
        body, unit = files.items[index]
        headers = {
            "Authorization": _basic(unit, self.password),
            "Content-Type": "application/xml",
            "X-File-Name": files.names[index],
        }
        with self.client.post(
            "/api/ivls/v1/results/", data=body, headers=headers, catch_response=True
        ) as response:
            if response.status_code not in (200, 201):
                response.failure(f"HTTP {response.status_code}")
