"""Celery tasks of the IVLS integration: thin, they take ids and call one service."""

from celery import shared_task

from integrations.ivls import services
from integrations.ivls.models import InboundResultFile


@shared_task(acks_late=True, name="integrations.ivls.tasks.result_file_process_task")
def result_file_process_task(file_id: int) -> str:
    """Match one stored result file. Idempotent: the service claims the file conditionally,
    so a redelivered message (acks_late after a killed worker) does nothing twice."""
    result_file = services.result_file_process(result_file=InboundResultFile(pk=file_id))
    return result_file.status


@shared_task(acks_late=True, name="integrations.ivls.tasks.result_files_sweep")
def result_files_sweep() -> int:
    """Periodic (beat): process files still received after the grace period, reclaim files
    of a worker that died, and fail files that used up their attempts."""
    return services.result_files_sweep()


@shared_task(name="integrations.ivls.tasks.exchange_log_prune")
def exchange_log_prune() -> int:
    """Periodic (beat): delete exchange log entries past EXCHANGE_LOG_RETENTION_DAYS."""
    return services.exchange_log_prune()
