from pims.models import AuditEvent, Department


def audit_event_write(
    *,
    action: str,
    department: Department | None = None,
    actor_type: str = AuditEvent.ACTOR_SYSTEM,
    actor_user=None,
    subject=None,
    patient_id: int | None = None,
    data: dict | None = None,
) -> AuditEvent:
    """Append one audit event. Callers run it inside their own transaction."""
    if actor_user is not None and actor_type == AuditEvent.ACTOR_SYSTEM:
        actor_type = AuditEvent.ACTOR_USER
    return AuditEvent.objects.create(
        action=action,
        department=department,
        actor_type=actor_type,
        actor_user=actor_user,
        subject_type=subject._meta.label if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        patient_id=patient_id,
        data=data or {},
    )
