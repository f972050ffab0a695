"""Invoice numbers are gapless per department and year, even when finalised at once."""

import threading
import time

import pytest
from django.db import connection, connections

from billing.models import Invoice, InvoiceCounter
from billing.services import invoice_create_for_consultation, invoice_finalise
from tests.billing.invoicing import practice


@pytest.fixture
def slow_counter(monkeypatch):
    """Widen the window between reading and writing the counter, so that finalisers which
    did not wait for each other would be caught taking the same number."""
    original = InvoiceCounter.save

    def save(self, *args, **kwargs):
        time.sleep(0.05)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(InvoiceCounter, "save", save)


def _finalise_all_at_once(invoices, user) -> list[BaseException]:
    barrier = threading.Barrier(len(invoices))
    errors: list[BaseException] = []

    def finalise(invoice):
        try:
            barrier.wait(timeout=30)
            invoice_finalise(invoice=invoice, finalised_by=user)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finalise, args=(invoice,)) for invoice in invoices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_ten_invoices_finalised_concurrently_get_numbers_one_to_ten(slow_counter):
    assert connection.vendor == "postgresql"
    clinic = practice()
    drafts = []
    for i in range(10):
        visit = clinic.visit()
        clinic.charge(f"Consultation {i}", "45.00", consultation=visit)
        drafts.append(invoice_create_for_consultation(consultation=visit, created_by=clinic.vet))

    assert _finalise_all_at_once(drafts, clinic.vet) == []

    finals = list(Invoice.objects.filter(status="final"))
    year = finals[0].year
    assert sorted(invoice.sequence for invoice in finals) == list(range(1, 11))
    assert sorted(invoice.number for invoice in finals) == [f"{year}-{n:06d}" for n in range(1, 11)]
    assert InvoiceCounter.objects.get(department=clinic.department, year=year).last_number == 10


@pytest.mark.django_db(transaction=True)
def test_the_same_draft_finalised_twice_at_once_is_numbered_once(slow_counter):
    clinic = practice()
    clinic.charge("Consultation", "45.00")
    draft = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)

    errors = _finalise_all_at_once([draft, Invoice.objects.get(pk=draft.pk)], clinic.vet)

    assert [str(error) for error in errors] == [
        str(["Invoice " + Invoice.objects.get().number + " is final and cannot be changed."])
    ]
    assert InvoiceCounter.objects.get().last_number == 1


@pytest.mark.django_db(transaction=True)
def test_a_failed_finalise_gives_its_number_back(monkeypatch):
    clinic = practice()
    clinic.charge("Consultation", "45.00")
    first = invoice_create_for_consultation(consultation=clinic.consultation, created_by=clinic.vet)
    second = clinic.visit()
    clinic.charge("Vaccine", "30.00", consultation=second)
    second = invoice_create_for_consultation(consultation=second, created_by=clinic.vet)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr("billing.services.audit_event_write", broken)
        with pytest.raises(RuntimeError):
            invoice_finalise(invoice=first, finalised_by=clinic.vet)
    first.refresh_from_db()
    assert first.status == "draft" and first.number is None

    assert invoice_finalise(invoice=second, finalised_by=clinic.vet).sequence == 1
    assert invoice_finalise(invoice=first, finalised_by=clinic.vet).sequence == 2
