"""Fixtures for the plug-in and simulator tests: plain Python, no Django, no database.

Run alone with ``python -m pytest tests/plugin -p no:django -q``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from integrations.icp_plugin.config import Settings
from integrations.icp_plugin.plugin import Plugin

from .fakepims import PASSWORD, FakePims


@pytest.fixture(autouse=True)
def _media_root():
    """Overrides the project-wide autouse fixture, which needs pytest-django's ``settings``."""
    yield


class FakeClock:
    """A monotonic clock the test moves; ``sleep`` advances it and runs an optional hook."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.on_sleep = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def interlink(tmp_path: Path) -> Path:
    root = tmp_path / "IDEXX Interlink"
    for sub in ("Requests", "Results/Data", "Results/Reports"):
        (root / sub).mkdir(parents=True)
    return root


@pytest.fixture
def pims(interlink: Path):
    server = FakePims(requests_dir=interlink / "Requests").start()
    yield server
    server.stop()


def make_settings(pims: FakePims, root: Path, **overrides) -> Settings:
    values = dict(
        password=PASSWORD,
        work_request_url=pims.work_request_url,
        results_url=pims.results_url,
        unit_id="1,2",
        interlink_root=root,
        requests_dir=root / "Requests",
        results_data_dir=root / "Results" / "Data",
        results_reports_dir=root / "Results" / "Reports",
        settle_seconds=2.0,
        timeout=5.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_plugin(pims: FakePims, interlink: Path, clock: FakeClock):
    def factory(**overrides) -> Plugin:
        settings = make_settings(pims, interlink, **overrides)
        return Plugin(settings, clock=clock, sleep=clock.sleep, today=lambda: TODAY)

    return factory


TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def plugin_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="icp_plugin")
    return caplog
