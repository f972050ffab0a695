"""IVLS services: connection settings, work request delivery, result files and reports."""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from integrations.ivls.exchange import exchange_log_prune  # noqa: F401 - a service too
from integrations.ivls.interlink import InterLinkError, ParsedMessage, parse_result
from integrations.ivls.models import (
    InboundResultContent,
    InboundResultFile,
    InboundResultFileDepartment,
    IVLSConnection,
    WorkRequest,
)
from integrations.ivls.passwords import MIN_LENGTH, password_digest
from labs import state
from labs.models import LabRun, ResultDocument
from labs.rundata import RUN_RESEND
from labs.services import result_document_record, run_record
from labs.services.matching import run_unchanged, unit_key_for
from pims.models import AuditEvent, Department
from pims.services import audit_event_write

logger = logging.getLogger(__name__)


@transaction.atomic
def connection_configure(
    *, department: Department, enabled: bool, password: str | None = None, changed_by=None
) -> IVLSConnection:
    """Enable or disable a department's IVLS connection and optionally set its password.

    Departments given the same password share one IVLS (the plug-in lists their unit ids)
    and so must share a time zone: InterLink files carry wall-clock times.
    """
    connection, _ = IVLSConnection.objects.select_for_update().get_or_create(department=department)
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


# --------------------------------------------------------------------------------------
# Work requests
# --------------------------------------------------------------------------------------


@transaction.atomic
def work_request_acknowledge(*, work_request_id: int, department_ids) -> WorkRequest:
    """The plug-in wrote the request into InterLink's Requests folder. Idempotent.

    Raises WorkRequest.DoesNotExist for an id that is not one of these departments'.
    Acknowledging a New moves its referral from queued to sent; after results (or for a
    Cancel) the referral does not move.
    """
    work_request = (
        WorkRequest.objects.select_related("referral__department", "referral__consultation")
        .filter(pk=work_request_id, department_id__in=list(department_ids))
        .get()
    )
    # Conditional: two acks racing each other deliver once and move the referral once.
    delivered = WorkRequest.objects.filter(pk=work_request.pk, delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )
    if delivered and work_request.action == WorkRequest.ACTION_NEW:
        state.referral_transition(
            referral=work_request.referral,
            event=state.EVENT_ACKNOWLEDGED,
            actor_type=AuditEvent.ACTOR_PLUGIN,
            data={"work_request": work_request.pk},
        )
    work_request.refresh_from_db(fields=["delivered_at"])
    return work_request


# --------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------

OUTCOME_ACCEPTED = "accepted"
OUTCOME_DUPLICATE = "duplicate"
OUTCOME_IGNORED = "ignored"
OUTCOME_REJECTED = "rejected"

_STATUS_OF_RUN = {
    LabRun.STATE_MATCHED: InboundResultFile.STATUS_MATCHED,
    LabRun.STATE_UNMATCHED: InboundResultFile.STATUS_UNMATCHED,
    LabRun.STATE_NEEDS_REVIEW: InboundResultFile.STATUS_NEEDS_REVIEW,
    # Only a duplicate leaves a dismissed run dismissed; any new content re-opens it.
    LabRun.STATE_DISMISSED: InboundResultFile.STATUS_DUPLICATE,
}


@dataclass(frozen=True)
class _Classified:
    status: str
    error: str = ""
    message: ParsedMessage | None = None


def _classify(content: bytes) -> _Classified:
    """Read just enough to answer: not InterLink (rejected), not a Result (ignored), or a
    Result to process after the answer."""
    try:
        message = parse_result(content)
    except InterLinkError as exc:
        return _Classified(InboundResultFile.STATUS_REJECTED, str(exc))
    except Exception as exc:  # noqa: BLE001 - a file that breaks the parser is kept, not lost
        logger.exception("The InterLink parser failed on a result file")
        return _Classified(InboundResultFile.STATUS_REJECTED, f"The file could not be read: {exc}")
    if message.run is None:
        return _Classified(
            InboundResultFile.STATUS_IGNORED,
            f"An InterLink {message.message_type or 'untyped'} message, not a Result: kept, "
            "nothing to match.",
            message,
        )
    return _Classified(InboundResultFile.STATUS_RECEIVED, "", message)


def _department_list(departments) -> list[Department]:
    ids = sorted({d.pk if isinstance(d, Department) else int(d) for d in departments})
    found = list(Department.objects.filter(pk__in=ids).order_by("pk"))
    if not ids or len(found) != len(ids):
        raise ValueError(f"Unknown departments among {ids}.")
    return found


def _enqueue(file_id: int) -> None:
    from integrations.ivls.tasks import result_file_process_task

    try:
        result_file_process_task.delay(file_id)
    except Exception:  # noqa: BLE001 - the file is stored; the periodic sweep processes it
        logger.warning(
            "Could not queue result file %s for processing (broker unavailable?); the "
            "periodic sweep will process it.",
            file_id,
            exc_info=True,
        )


def _duplicate_of(departments: list[Department], sha256: str) -> InboundResultFile | None:
    file_id = (
        InboundResultFileDepartment.objects.filter(department__in=departments, sha256=sha256)
        .order_by("result_file_id")
        .values_list("result_file_id", flat=True)
        .first()
    )
    return InboundResultFile.objects.filter(pk=file_id).first() if file_id else None


def result_file_receive(*, departments, content: bytes, file_name: str = "") -> InboundResultFile:
    """Store a posted result file durably, in one commit, and queue its processing.

    Returns the stored file with ``outcome``: "accepted" (new, processed after the answer),
    "duplicate" (the same bytes were already accepted for one of these departments, or a
    resend of results the run already has: the earlier file is returned), "ignored" (an
    InterLink message that is not a Result) or "rejected" (not readable: ``error`` says
    why). Rejected and ignored files are kept for diagnosis.
    """
    departments = _department_list(departments)
    sha256 = hashlib.sha256(content).hexdigest()
    classified = _classify(content)
    run = classified.message.run if classified.message else None
    if run is not None and run.kind == RUN_RESEND:
        unchanged = run_unchanged(departments=departments, run=run)
        holder = (
            InboundResultFile.objects.filter(run=unchanged).order_by("-id").first()
            if unchanged
            else None
        )
        if holder is not None:
            holder.outcome = OUTCOME_DUPLICATE
            return holder
    with transaction.atomic():
        try:
            # The unique constraint on (department, sha256) decides between two copies
            # posted at the same instant: one insert waits for the other and then fails.
            with transaction.atomic():
                result_file = InboundResultFile.objects.create(
                    sha256=sha256,
                    file_name=file_name[:255],
                    size=len(content),
                    unit_key=unit_key_for(departments),
                    status=classified.status,
                    error=classified.error,
                    message_type=(classified.message.message_type if classified.message else "")[
                        :50
                    ],
                    requisition_number=(run.requisition_number if run else "")[:40],
                    diagnostic_set_id=(run.run_id if run else "")[:100],
                )
                InboundResultContent.objects.create(result_file=result_file, data=content)
                InboundResultFileDepartment.objects.bulk_create(
                    InboundResultFileDepartment(
                        result_file=result_file, department=department, sha256=sha256
                    )
                    for department in departments
                )
        except IntegrityError:
            existing = _duplicate_of(departments, sha256)
            if existing is None:
                raise
            existing.outcome = OUTCOME_DUPLICATE
            return existing
        if classified.status == InboundResultFile.STATUS_RECEIVED:
            file_id = result_file.pk
            transaction.on_commit(lambda: _enqueue(file_id), robust=True)
    result_file.outcome = {
        InboundResultFile.STATUS_RECEIVED: OUTCOME_ACCEPTED,
        InboundResultFile.STATUS_IGNORED: OUTCOME_IGNORED,
        InboundResultFile.STATUS_REJECTED: OUTCOME_REJECTED,
    }[classified.status]
    return result_file


def _release(file_id: int, error: str) -> None:
    """Give a claimed file back after an error: received again (the sweep retries it), or
    failed once it has used its attempts."""
    InboundResultFile.objects.filter(pk=file_id, status=InboundResultFile.STATUS_PROCESSING).update(
        status=Case(
            When(
                attempts__gte=settings.IVLS_MAX_ATTEMPTS,
                then=Value(InboundResultFile.STATUS_FAILED),
            ),
            default=Value(InboundResultFile.STATUS_RECEIVED),
        ),
        error=error[:2000],
    )


def result_file_process(*, result_file: InboundResultFile) -> InboundResultFile:
    """Match a stored result file. Idempotent: a file is claimed once (received ->
    processing, with the attempt counted) by a conditional UPDATE, and matching the same
    results twice records nothing new.

    An error leaves the file received for the sweep to retry (never failed on a first
    error); after IVLS_MAX_ATTEMPTS attempts it is failed, with the error kept.
    """
    file_id = result_file.pk
    claimed = InboundResultFile.objects.filter(
        pk=file_id, status=InboundResultFile.STATUS_RECEIVED
    ).update(
        status=InboundResultFile.STATUS_PROCESSING,
        attempts=F("attempts") + 1,
        claimed_at=timezone.now(),
    )
    if claimed:
        try:
            with transaction.atomic():
                departments = list(
                    Department.objects.filter(
                        inboundresultfiledepartment__result_file_id=file_id
                    ).order_by("pk")
                )
                data = bytes(InboundResultContent.objects.get(pk=file_id).data)
                message = parse_result(data)
                if message.run is None:
                    status, lab_run = InboundResultFile.STATUS_IGNORED, None
                else:
                    lab_run = run_record(departments=departments, run=message.run)
                    status = (
                        _STATUS_OF_RUN[lab_run.review_state]
                        if lab_run.revision_recorded
                        else InboundResultFile.STATUS_DUPLICATE
                    )
                InboundResultFile.objects.filter(pk=file_id).update(
                    status=status, run=lab_run, processed_at=timezone.now(), error=""
                )
        except Exception as exc:  # noqa: BLE001 - recorded on the file; the sweep retries
            logger.warning("Processing result file %s failed: %s", file_id, exc, exc_info=True)
            try:
                _release(file_id, f"{type(exc).__name__}: {exc}")
            except DatabaseError:
                # The database is gone too; the sweep reclaims the file once its claim is
                # older than the task time limit.
                logger.warning("Could not release result file %s", file_id, exc_info=True)
    try:
        return InboundResultFile.objects.get(pk=file_id)
    except DatabaseError:
        return result_file


def result_files_sweep(*, now=None, batch: int = 100) -> int:
    """Process files nobody processed: still received after the grace period, or claimed by a
    worker that died (processing for longer than the task time limit). Returns how many
    were tried."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    InboundResultFile.objects.filter(
        status=InboundResultFile.STATUS_PROCESSING, claimed_at__lt=stale
    ).update(status=InboundResultFile.STATUS_RECEIVED)
    for result_file in InboundResultFile.objects.filter(
        status=InboundResultFile.STATUS_RECEIVED, attempts__gte=settings.IVLS_MAX_ATTEMPTS
    ).only("pk", "attempts", "error"):
        InboundResultFile.objects.filter(
            pk=result_file.pk, status=InboundResultFile.STATUS_RECEIVED
        ).update(
            status=InboundResultFile.STATUS_FAILED,
            error=(
                f"Gave up after {result_file.attempts} attempts. "
                f"{result_file.error or 'The processing did not finish.'}"
            )[:2000],
        )
    cutoff = now - timedelta(seconds=settings.IVLS_SWEEP_GRACE_SECONDS)
    waiting = list(
        InboundResultFile.objects.filter(
            status=InboundResultFile.STATUS_RECEIVED, received_at__lte=cutoff
        )
        .order_by("received_at", "id")
        .values_list("pk", flat=True)[:batch]
    )
    for file_id in waiting:
        result_file_process(result_file=InboundResultFile(pk=file_id))
    return len(waiting)


# --------------------------------------------------------------------------------------
# PDF reports
# --------------------------------------------------------------------------------------


def report_receive(
    *, departments, content: bytes, diagnostic_set_id: str, file_name: str = ""
) -> ResultDocument:
    """Keep a run's PDF for these departments (see labs.services.result_document_record)."""
    return result_document_record(
        departments=_department_list(departments),
        content=content,
        diagnostic_set_id=diagnostic_set_id,
        file_name=file_name,
    )
