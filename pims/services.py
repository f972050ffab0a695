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


def row_locked(instance):
    """The row as stored, locked until the transaction ends.

    An audit diff must be taken against the database, not the caller's object: a bound
    ModelForm writes the new values onto its instance while it validates. The lock keeps two
    people saving the same record in turn from both diffing against the same old row.
    """
    return type(instance).objects.select_for_update().get(pk=instance.pk)


def fields_apply(instance, allowed: tuple[str, ...], changes: dict) -> list[str]:
    """Set the given fields on ``instance``; return the names of those whose value changed.

    A foreign key is compared by id, so reading the old related row costs no query.
    """
    unknown = set(changes) - set(allowed)
    if unknown:
        kind = instance._meta.verbose_name
        raise TypeError(f"Unknown {kind} fields: {', '.join(sorted(unknown))}")
    changed = []
    for name in allowed:
        if name not in changes:
            continue
        value = changes[name]
        field = instance._meta.get_field(name)
        if field.many_to_one:
            old, new = getattr(instance, field.attname), getattr(value, "pk", value)
        else:
            old, new = getattr(instance, name), value
        if old != new:
            setattr(instance, name, value)
            changed.append(name)
    return changed
