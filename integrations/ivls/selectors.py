"""Reads of IVLS data shared by the plug-in API and the settings pages."""

from integrations.ivls.models import InboundResultFile, WorkRequest


def work_requests_pending(*, department_ids, limit: int) -> list[WorkRequest]:
    """Up to ``limit + 1`` undelivered work requests of the departments, oldest first (the
    extra one tells the caller there are more). One query on the pending index, whatever
    the backlog or the number of departments."""
    return list(
        WorkRequest.objects.filter(
            department_id__in=list(department_ids), delivered_at__isnull=True
        )
        .select_related("referral")
        .only(
            "id",
            "department_id",
            "action",
            "created_at",
            "xml",
            "referral_id",
            "referral__number",
        )
        .order_by("id")[: limit + 1]
    )


def work_requests_pending_count(*, department_ids) -> int:
    return WorkRequest.objects.filter(
        department_id__in=list(department_ids), delivered_at__isnull=True
    ).count()


def result_file_for_units(*, file_id: int, department_ids) -> InboundResultFile | None:
    """A result file posted for any of the departments (never its raw bytes)."""
    return (
        InboundResultFile.objects.filter(
            pk=file_id, inboundresultfiledepartment__department_id__in=list(department_ids)
        )
        .select_related("run__referral")
        .distinct()
        .first()
    )
