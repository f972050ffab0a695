"""Who may see what: the current department and membership checks every page goes through.

A user works in one department at a time (kept in the session). Clients and patients belong
to the practice; everything else a page shows belongs to one department and is visible only
to that department's members. A page for another department's object answers 404, so its
existence does not leak; a member lacking a role's permission gets 403.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from pims.models import Department, Membership
from pims.permissions import ROLE_PERMISSIONS

SESSION_KEY = "pims_department_id"


def memberships(request) -> list[Membership]:
    """The signed-in user's memberships, loaded once per request."""
    cached = getattr(request, "_pims_memberships", None)
    if cached is None:
        user = request.user
        if not getattr(user, "is_authenticated", False):
            cached = []
        else:
            cached = list(
                Membership.objects.filter(user=user)
                .select_related("department")
                .order_by("department_id")
            )
        request._pims_memberships = cached
    return cached


def membership_in(request, department: Department | int | None) -> Membership | None:
    if department is None:
        return None
    dept_id = department.pk if isinstance(department, Department) else department
    return next((m for m in memberships(request) if m.department_id == dept_id), None)


def current_membership(request) -> Membership | None:
    """The membership of the department the user works in now (the session's, or the first)."""
    found = membership_in(request, request.session.get(SESSION_KEY))
    if found is None:
        all_memberships = memberships(request)
        found = all_memberships[0] if all_memberships else None
        if found is not None:
            request.session[SESSION_KEY] = found.department_id
    return found


def current_department(request) -> Department | None:
    membership = current_membership(request)
    return membership.department if membership else None


def _enter(request, membership: Membership) -> None:
    request.department = membership.department
    request.membership = membership
    # Reset after the response by pims.middleware.DepartmentTimeZoneMiddleware.
    timezone.activate(membership.department.zone)


def department_switch(request, department_id: int) -> Department:
    membership = membership_in(request, department_id)
    if membership is None:
        raise Http404("No such department.")
    request.session[SESSION_KEY] = membership.department_id
    _enter(request, membership)
    return membership.department


def can(request, permission: str, department: Department | int | None = None) -> bool:
    """The same answer as pims.permissions.has_permission, from the memberships in hand."""
    membership = (
        current_membership(request) if department is None else membership_in(request, department)
    )
    return membership is not None and permission in ROLE_PERMISSIONS.get(
        membership.role, frozenset()
    )


def department_required(permission: str | None = None):
    """Sign-in, a membership in the current department and (optionally) a permission there.

    Sets ``request.department`` and ``request.membership`` for the view.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                raise PermissionDenied("You are not a member of any department.")
            _enter(request, membership)
            if permission and not can(request, permission):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def department_object_enter(request, department_id: int, permission: str | None = None):
    """Open an object of a department: 404 unless the user is a member there.

    Opening another department's object the user belongs to moves their work to that
    department, so the top bar and every later page agree with what they see.
    """
    membership = membership_in(request, department_id)
    if membership is None:
        raise Http404("Not found.")
    if request.session.get(SESSION_KEY) != membership.department_id:
        request.session[SESSION_KEY] = membership.department_id
    _enter(request, membership)
    if permission and not can(request, permission):
        raise PermissionDenied("Your role does not allow this.")
    return membership.department


def member_department_ids(request) -> list[int]:
    return [m.department_id for m in memberships(request)]
