"""The benchmark practice must look like what the services write, or the benchmark measures
a database the application never produces. Built small, inside the test transaction, with
every foreign key checked as each row arrives."""

import pytest
from django.db import connection

from integrations.ivls.interlink import parse_result, parse_work_request
from integrations.ivls.models import InboundResultFile, WorkRequest
from labs.models import LabRun, Referral, Result
from labs.selectors import referral_done_lines
from tests.bench import cluster
from tests.bench.data import PAGE_SIZES, Builder

pytestmark = pytest.mark.django_db


@pytest.fixture
def practice(settings):
    settings.IVLS_PASSWORD_KEY = cluster.IVLS_PASSWORD_KEY
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    builder = Builder(connection.connection, scale=0.005)
    builder.practice()
    builder.clients_and_patients()
    builder.referrals_all()
    return builder


def test_complete_referrals_have_every_line_done_by_the_domain_rule(practice):
    complete = Referral.objects.filter(status=Referral.STATUS_COMPLETE).order_by("id")
    assert complete.count() > 30
    for referral in complete[:40]:
        done, total = referral_done_lines(referral)
        assert total > 0
        assert done == total, referral.number


def test_results_sit_on_lines_of_their_own_referral_and_match_the_stored_file(practice):
    run = LabRun.objects.filter(referral__status=Referral.STATUS_COMPLETE).order_by("id").first()
    results = list(Result.objects.filter(run=run).select_related("referral_line"))
    assert results
    assert all(r.referral_id == run.referral_id for r in results)
    assert all(r.referral_line.referral_id == run.referral_id for r in results)
    stored = InboundResultFile.objects.get(run=run)
    parsed = parse_result(bytes(stored.content.data)).run
    assert parsed.requisition_number == str(run.referral.number)
    assert [(a.code, a.value_text) for a in parsed.assays] == [
        (r.code, r.value_text) for r in results
    ]


def test_each_department_has_a_poll_backlog_of_work_requests_naming_their_referral(practice):
    pending = WorkRequest.objects.filter(delivered_at__isnull=True).select_related("referral")
    assert pending.count() == 100 * practice.queued_per_dept
    for work_request in pending[:20]:
        assert work_request.referral.status == Referral.STATUS_QUEUED
        data = parse_work_request(work_request.xml)
        assert data.requisition_number == str(work_request.referral.number)
        assert data.service_codes == ("CHEM17",)


def test_page_consultations_hold_the_announced_number_of_chem17_referrals(practice):
    pages = practice.special["pages"]
    for size in PAGE_SIZES:
        referrals = Referral.objects.filter(consultation_id=pages[str(size)]["consultation"])
        assert referrals.count() == size
        assert Result.objects.filter(referral__in=referrals).count() == 17 * size
