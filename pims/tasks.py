from celery import shared_task
from django.db import transaction

from pims.services import audit_event_write


@shared_task
def ping(token: str) -> None:
    """Wiring check: a worker records that it ran, in this installation's database."""
    with transaction.atomic():
        audit_event_write(action="system.ping", data={"token": token})
