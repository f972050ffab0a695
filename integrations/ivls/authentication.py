"""Who is calling the plug-in API: HTTP Basic with a unit list and a department password.

The order of the answers is ICP-API.md's: malformed credentials, an unknown unit or a wrong
password give 401; a listed department whose connection is disabled gives 403; too many
401s from one client address for one unit give 429 for that address and unit until the
sliding window passes. Failures are counted in the database (AuthFailure), never in a cache,
so the throttle works with Redis down and needs nothing that outlives a password change.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from integrations.ivls.models import AuthFailure, IVLSConnection
from integrations.ivls.passwords import password_matches

REALM = 'Basic realm="ivls"'
MAX_UNITS = 50


@dataclass
class PluginAuth:
    """What the plug-in said about itself, kept on the request for the exchange log."""

    client_address: str
    unit_list: str = ""
    units: tuple[int, ...] = ()
    authenticated: bool = False
    connections: list[IVLSConnection] = field(default_factory=list)
    failure: str = ""


@dataclass(frozen=True)
class PluginPrincipal:
    """``request.user`` on the plug-in API: the departments of the unit list."""

    units: tuple[int, ...]

    is_authenticated = True
    is_anonymous = False

    @property
    def department_ids(self) -> list[int]:
        return list(self.units)

    def __str__(self) -> str:
        return f"IVLS plug-in for units {','.join(map(str, self.units))}"


class Unauthorized(exceptions.AuthenticationFailed):
    """401 with ``WWW-Authenticate: Basic realm="ivls"`` (DRF adds the header)."""


class Throttled(exceptions.Throttled):
    """429 with ``Retry-After`` (DRF adds the header from ``wait``)."""


def client_address(request) -> str:
    """The connection's address, or the forwarded one behind TRUSTED_PROXY_COUNT proxies.

    Each trusted proxy appends the address it was connected from, so the client is the
    n-th entry from the right; anything further left could be forged by the client.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            candidate = forwarded[-trusted] if len(forwarded) >= trusted else forwarded[0]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return remote


def parse_unit_list(text: str) -> tuple[int, ...] | None:
    """``1``, ``1,2``, ``1, 2, 3`` (spaces ignored); None when malformed (``1,,2``, ``a``)."""
    compact = "".join(text.split())
    if not compact:
        return None
    parts = compact.split(",")
    if len(parts) > MAX_UNITS or not all(part.isdigit() and len(part) <= 18 for part in parts):
        return None
    return tuple(sorted({int(part) for part in parts}))


def _credentials(request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, colon, password = text.partition(":")
    if not colon:
        return None
    return user, password


def _window_start():
    return timezone.now() - timedelta(seconds=settings.IVLS_THROTTLE_WINDOW_SECONDS)


def _retry_after(address: str, units: tuple[int, ...]) -> int | None:
    """Seconds until every listed unit is below the limit from this address; None if none
    is throttled. One query, so a right password pays nothing noticeable."""
    limit = settings.IVLS_THROTTLE_FAILURES
    window = settings.IVLS_THROTTLE_WINDOW_SECONDS
    times = list(
        AuthFailure.objects.filter(
            client_address=address, unit__in=[str(u) for u in units], at__gte=_window_start()
        )
        .order_by("unit", "-at")
        .values_list("unit", "at")
    )
    by_unit: dict[str, list] = {}
    for unit, at in times:
        by_unit.setdefault(unit, []).append(at)
    now = timezone.now()
    waits = []
    for unit_times in by_unit.values():
        if len(unit_times) >= limit:
            # Below the limit again once the limit-th newest failure leaves the window.
            expires = unit_times[limit - 1] + timedelta(seconds=window)
            waits.append(max(1, math.ceil((expires - now).total_seconds())))
    return max(waits) if waits else None


def _record_failure(auth: PluginAuth) -> None:
    if auth.units:
        now = timezone.now()
        AuthFailure.objects.bulk_create(
            AuthFailure(client_address=auth.client_address[:64], unit=str(unit), at=now)
            for unit in auth.units
        )


def authenticate_plugin(request) -> PluginPrincipal:
    """Check the request's credentials, or raise the exception that gives the right answer."""
    auth = PluginAuth(client_address=client_address(request))
    request._request.ivls_auth = auth
    credentials = _credentials(request)
    if credentials is None:
        auth.failure = "no or malformed credentials"
        raise Unauthorized(
            "This API needs HTTP Basic authentication: the Unit ID as the user name and the "
            "department's IVLS password as the password."
        )
    user, password = credentials
    auth.unit_list = user[:200]
    units = parse_unit_list(user)
    if units is None:
        auth.failure = "malformed unit list"
        raise Unauthorized(
            f"The Unit ID {user[:60]!r} is not a unit list: use one number, or numbers "
            "separated by commas such as 1, 2, 3."
        )
    auth.units = units
    wait = _retry_after(auth.client_address, units)
    if wait is not None:
        auth.failure = "throttled"
        raise Throttled(
            wait=wait,
            detail=(
                "Too many failed logins from this address for this Unit ID; check the "
                "password in the plug-in's settings, then wait before trying again."
            ),
        )
    connections = list(
        IVLSConnection.objects.filter(department_id__in=units).only(
            "department_id", "enabled", "password_digest", "last_heard_at"
        )
    )
    auth.connections = connections
    known = {c.department_id for c in connections}
    # Every listed unit must exist and take this password; each check is constant time.
    matches = [password_matches(password, c.password_digest) for c in connections]
    if len(known) != len(units) or not all(matches):
        auth.failure = "unknown unit" if len(known) != len(units) else "wrong password"
        _record_failure(auth)
        raise Unauthorized(
            f"The Unit ID {','.join(map(str, units))} and this password are not accepted: "
            "check both in the plug-in's settings against the department's IVLS settings page."
        )
    disabled = [c.department_id for c in connections if not c.enabled]
    if disabled:
        auth.failure = "connection disabled"
        names = ", ".join(str(unit) for unit in sorted(disabled))
        noun = "unit" if len(disabled) == 1 else "units"
        raise exceptions.PermissionDenied(
            f"The IVLS connection of {noun} {names} is disabled on this server; an admin can "
            "enable it on the department's IVLS settings page."
        )
    auth.authenticated = True
    return PluginPrincipal(units=units)


class IVLSBasicAuthentication(BaseAuthentication):
    """DRF authentication for the plug-in API (see ``authenticate_plugin``)."""

    def authenticate(self, request):
        return (authenticate_plugin(request), None)

    def authenticate_header(self, request) -> str:
        return REALM


class IVLSBasicScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.ivls.authentication.IVLSBasicAuthentication"
    name = "ivlsBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": (
                "User name: the Unit ID (one department id or a comma list such as "
                "`1, 2, 3`). Password: the department's IVLS password."
            ),
        }
