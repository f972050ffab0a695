"""IVLS services: connection settings (and, with the plug-in API, result files)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from integrations.ivls.models import IVLSConnection
from integrations.ivls.passwords import MIN_LENGTH, password_digest
from pims.models import Department
from pims.services import audit_event_write


@transaction.atomic
def connection_configure(
    *, department: Department, enabled: bool, password: str | None = None, changed_by=None
) -> IVLSConnection:
    """Enable or disable a department's IVLS connection and optionally set its password.

    Departments given the same password share one IVLS (the plug-in lists their unit ids)
    and so must share a time zone: InterLink files carry wall-clock times.
    """
    connection, _ = IVLSConnection.objects.select_for_update().get_or_create(
        department=department
    )
    changes: dict = {"enabled": enabled}
    if password is not None:
        if len(password) < MIN_LENGTH:
            raise ValidationError(f"The IVLS password needs at least {MIN_LENGTH} characters.")
        digest = password_digest(password)
        other_zones = set(
            IVLSConnection.objects.filter(password_digest=digest)
            .exclude(department=department)
            .exclude(department__time_zone=department.time_zone)
            .values_list("department__time_zone", flat=True)
        )
        if other_zones:
            raise ValidationError(
                "Departments that share an IVLS password share one IVLS and must share a time "
                f"zone; {department.name} is in {department.time_zone}, others using this "
                f"password are in {', '.join(sorted(other_zones))}."
            )
        connection.password_digest = digest
        connection.password_changed_at = timezone.now()
        changes["password_changed"] = True
    if enabled and not connection.password_digest:
        raise ValidationError("Set a password before enabling the IVLS connection.")
    connection.enabled = enabled
    connection.save()
    audit_event_write(
        action="ivls.connection_configured",
        department=department,
        actor_user=changed_by,
        subject=connection,
        data=changes,
    )
    return connection
