"""Roles and what they may do: the one map every permission check reads."""

from pims.models import Department, Membership

VIEW_CLINICAL = "view_clinical"
EDIT_CLINICAL = "edit_clinical"
ENTER_RESULTS = "enter_results"
WORK_REVIEW_QUEUE = "work_review_queue"
MANAGE_BILLING = "manage_billing"
CHANGE_SETTINGS = "change_settings"
EDIT_ITEM_LIST = "edit_item_list"

_CLINICAL = {
    VIEW_CLINICAL,
    EDIT_CLINICAL,
    ENTER_RESULTS,
    WORK_REVIEW_QUEUE,
    MANAGE_BILLING,
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Membership.ROLE_VET: frozenset(_CLINICAL),
    Membership.ROLE_NURSE: frozenset(_CLINICAL),
    Membership.ROLE_ADMIN: frozenset(_CLINICAL | {CHANGE_SETTINGS, EDIT_ITEM_LIST}),
}


def role_in(user, department: Department | int) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    dept_id = department.pk if isinstance(department, Department) else department
    return (
        Membership.objects.filter(user=user, department_id=dept_id)
        .values_list("role", flat=True)
        .first()
    )


def has_permission(user, department: Department | int, permission: str) -> bool:
    role = role_in(user, department)
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())
