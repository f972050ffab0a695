"""How labs reaches vendors: order transports, chosen by route name in settings.

A transport runs in the caller's transaction, writes rows only (no network I/O) and raises
to abort. ``LAB_ORDER_TRANSPORTS = {"ivls": "integrations.ivls.transport.IVLSTransport"}``.
"""

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

ROUTE_IVLS = "ivls"


class OrderTransport(Protocol):
    def referral_queued(self, *, referral, lines) -> None: ...

    def referral_cancelled(self, *, referral) -> None: ...


@cache
def _transport(route: str, dotted_path: str) -> OrderTransport:
    return import_string(dotted_path)()


def transport_for(route: str) -> OrderTransport:
    return _transport(route, settings.LAB_ORDER_TRANSPORTS[route])
