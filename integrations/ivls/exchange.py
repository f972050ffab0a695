"""Bookkeeping of plug-in calls: the exchange log, empty-poll counts, last heard from.

A clinic's plug-in polls every few seconds, so an empty poll must not write. Three rules keep
polling write-free:

- last heard from is written at most once per department every
  IVLS_HEARD_FROM_INTERVAL_SECONDS, by a conditional UPDATE (``... WHERE last_heard_at <
  now - interval``), and only when the value read during authentication is that old;
- empty polls are counted in this process and added to PollCounter together with that
  heard-from write (or, in a process that did not make it, at most once per interval), so
  a restart loses at most one interval's worth of counts of one process;
- everything else the plug-in does is logged, one ExchangeLogEntry per department.

None of this may turn an answer into an error: a failing write is logged and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.ivls.models import (
    AuthFailure,
    ExchangeLogEntry,
    IVLSConnection,
    PollCounter,
)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_empty_polls: dict[int, int] = {}
_last_flush: dict[int, float] = {}


def _interval() -> int:
    return settings.IVLS_HEARD_FROM_INTERVAL_SECONDS


def heard_from(connections: list[IVLSConnection]) -> list[int]:
    """Record that the plug-in was heard from; returns the departments written now."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=_interval())
    stale = [
        c.department_id for c in connections if c.last_heard_at is None or c.last_heard_at < cutoff
    ]
    if not stale:
        return []
    # Conditional: of several processes that read the same stale value, one writes.
    updated = (
        IVLSConnection.objects.filter(department_id__in=stale)
        .filter(Q(last_heard_at__isnull=True) | Q(last_heard_at__lt=cutoff))
        .update(last_heard_at=now)
    )
    return stale if updated else []


def empty_poll_count(department_ids: list[int], *, flush_now: list[int] = ()) -> None:
    """Count an empty poll in this process; flush counts that are due."""
    clock = time.monotonic()
    due: dict[int, int] = {}
    with _lock:
        for department_id in department_ids:
            _empty_polls[department_id] = _empty_polls.get(department_id, 0) + 1
            last = _last_flush.get(department_id)
            if department_id in flush_now or last is None or clock - last >= _interval():
                due[department_id] = _empty_polls.pop(department_id)
                _last_flush[department_id] = clock
    if due:
        _flush(due)


def empty_polls_flush() -> None:
    """Write every count this process holds (tests, and a process shutting down)."""
    with _lock:
        due = dict(_empty_polls)
        _empty_polls.clear()
    if due:
        _flush(due)


def _flush(counts: dict[int, int]) -> None:
    day = timezone.localdate()
    try:
        with transaction.atomic():
            for department_id, count in counts.items():
                updated = PollCounter.objects.filter(department_id=department_id, day=day).update(
                    empty_polls=F("empty_polls") + count
                )
                if not updated:
                    _, created = PollCounter.objects.get_or_create(
                        department_id=department_id, day=day, defaults={"empty_polls": count}
                    )
                    if not created:
                        PollCounter.objects.filter(department_id=department_id, day=day).update(
                            empty_polls=F("empty_polls") + count
                        )
    except DatabaseError:
        logger.warning("Could not write empty-poll counts %s", counts, exc_info=True)


def exchange_log_write(
    *,
    department_ids: list[int | None],
    method: str,
    endpoint: str,
    status_code: int,
    outcome: str = "",
    unit_list: str = "",
    requisition_number: str = "",
    size: int = 0,
    client_address: str = "",
) -> None:
    """One row per department (None for a unit that is not one of ours)."""
    address = client_address or None
    try:
        ExchangeLogEntry.objects.bulk_create(
            ExchangeLogEntry(
                department_id=department_id,
                method=method[:8],
                endpoint=endpoint[:200],
                status_code=status_code,
                outcome=outcome[:200],
                unit_list=unit_list[:200],
                requisition_number=requisition_number[:40],
                bytes=size,
                client_address=address,
            )
            for department_id in (department_ids or [None])
        )
    except DatabaseError:
        logger.warning("Could not write the exchange log for %s %s", method, endpoint)


def exchange_log_prune(*, now=None) -> int:
    """Delete log entries (and old throttle records and counters) past their retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EXCHANGE_LOG_RETENTION_DAYS)
    deleted, _ = ExchangeLogEntry.objects.filter(at__lt=cutoff).delete()
    PollCounter.objects.filter(day__lt=cutoff.date()).delete()
    window = timedelta(seconds=settings.IVLS_THROTTLE_WINDOW_SECONDS)
    AuthFailure.objects.filter(at__lt=now - window).delete()
    return deleted
