"""Template context every page needs: the department the user works in and the switcher."""

from pims import access
from pims.permissions import ROLE_PERMISSIONS


def department(request):
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {}
    membership = getattr(request, "membership", None) or access.current_membership(request)
    return {
        "current_department": membership.department if membership else None,
        "current_role": membership.role if membership else "",
        "department_memberships": access.memberships(request),
        "perms_here": ROLE_PERMISSIONS.get(membership.role, frozenset()) if membership else (),
    }
