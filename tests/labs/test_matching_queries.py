"""Query counts of matching a result file: flat in the number of analytes.

A Chem 17 file for a referral whose only line is the CHEM17 ordering item adds every
analyte to the referral and the consultation. The item lookups, charges, referral lines
and results go to the database in bulk, so a 17-analyte file costs what a 4-analyte file
costs.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import ConsultationLine, Item
from billing.services import consultation_lines_add
from integrations.ivls.services import result_file_process, result_file_receive
from labs.models import Referral, Result
from tests.conftest import manage, sqlite_env
from tests.factories import (
    ConsultationFactory,
    DepartmentFactory,
    VatRateFactory,
    ivls_item,
    lab_item,
)
from tests.integrations.helpers import Assay, ivls_referral, referral_xml

CHEM17 = (
    "ALB ALKP ALT AMYL BUN Ca CHOL CREA GGT GLOB GLU LIPA PHOS TBIL TP ALB/GLOB BUN/CREA"
).split()
# Processing the file takes 44 queries (one Code auto-created, as in chem_referral): room for
# a constant query or three more, none for a query per analyte.
CHEM17_MAX_QUERIES = 47


def chem_referral(codes, *, set_up=None):
    """A department whose item list has a priced item with a VAT rate for each of ``set_up``
    (default: all but the last Code, which matching must create), an ordering item yielding
    ``codes``, and a referral whose only line is that ordering item."""
    department = DepartmentFactory()
    vat = VatRateFactory(rate=Decimal("25.50"))
    set_up = codes[:-1] if set_up is None else set_up
    for code in set_up:
        lab_item(department, code, price="12.00", vat_rate=vat)
    chem = ivls_item(department, "CHEM", yields=codes, price="89.00", vat_rate=vat)
    return ivls_referral(department, items=[chem])


def received_file(referral, codes, **kwargs):
    content = referral_xml(
        referral,
        assays=[Assay(code, f"{i}.5", "g/dL", "1", "9") for i, code in enumerate(codes)],
        **kwargs,
    )
    return result_file_receive(departments=[referral.department], content=content)


def processed_with_queries(result_file):
    with CaptureQueriesContext(connection) as queries:
        result_file = result_file_process(result_file=result_file)
    return result_file, len(queries.captured_queries)


def test_queries_per_file_do_not_grow_with_the_number_of_analytes(db):
    four = CHEM17[:4]
    small = chem_referral(four)
    large = chem_referral(CHEM17)
    small_file, small_queries = processed_with_queries(received_file(small, four))
    large_file, large_queries = processed_with_queries(received_file(large, CHEM17))
    assert (small_file.status, large_file.status) == ("matched", "matched")
    # Every analyte became a line of its own, with its result.
    assert small.lines.count() == 1 + 4
    assert large.lines.count() == 1 + 17
    assert Result.objects.filter(referral=large, referral_line__isnull=False).count() == 17
    assert large_queries == small_queries


def test_chem17_file_stays_within_its_query_budget(db, django_assert_max_num_queries):
    referral = chem_referral(CHEM17)
    result_file = received_file(referral, CHEM17)
    with django_assert_max_num_queries(CHEM17_MAX_QUERIES):
        result_file = result_file_process(result_file=result_file)
    assert result_file.status == "matched"
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE


def test_analytes_added_in_bulk_are_charged_as_one_by_one(db):
    # Yielded by the ordering line: zero; not yielded: the item's price; created by
    # matching: zero. The VAT rate is copied from each item either way.
    referral = chem_referral(["ALB", "ALKP"], set_up=["ALB", "ALKP", "SDMA"])
    result_file = received_file(referral, ["ALB", "ALKP", "SDMA", "NEWX"])
    assert result_processed_status(result_file) == "matched"
    charges = {
        line.item.code: line.consultation_line
        for line in referral.lines.select_related("item", "consultation_line")
    }
    assert {code: (c.unit_price, c.vat_rate) for code, c in charges.items()} == {
        "CHEM": (Decimal("89.00"), Decimal("25.50")),
        "ALB": (Decimal("0.00"), Decimal("25.50")),
        "ALKP": (Decimal("0.00"), Decimal("25.50")),
        "SDMA": (Decimal("12.00"), Decimal("25.50")),
        "NEWX": (Decimal("0.00"), Decimal("0")),
    }
    assert all(line.added_by_matching for line in referral.lines.exclude(item__code="CHEM"))
    new = Item.objects.get(item_list=referral.department.item_list, code="NEWX")
    assert new.auto_created and new.unit == "g/dL" and new.price == Decimal("0.00")
    # In the run's order, each result on the line of its Code.
    results = Result.objects.filter(referral=referral).select_related("referral_line__item")
    assert [(r.code, r.referral_line.item.code) for r in results.order_by("id")] == [
        ("ALB", "ALB"),
        ("ALKP", "ALKP"),
        ("SDMA", "SDMA"),
        ("NEWX", "NEWX"),
    ]


def result_processed_status(result_file) -> str:
    return result_file_process(result_file=result_file).status


def test_processing_a_file_twice_adds_nothing_the_second_time(db):
    referral = chem_referral(CHEM17)
    result_processed_status(received_file(referral, CHEM17))
    charges = ConsultationLine.objects.filter(consultation=referral.consultation).count()
    # The same results again under another file name and message: a duplicate.
    again = received_file(referral, CHEM17, notes=("resent",))
    assert result_processed_status(again) == "duplicate"
    assert ConsultationLine.objects.filter(consultation=referral.consultation).count() == charges
    assert referral.lines.count() == 1 + 17
    assert (
        Item.objects.filter(item_list=referral.department.item_list, code="BUN/CREA").count() == 1
    )


def test_the_next_run_reuses_items_the_first_created(db):
    referral = chem_referral(CHEM17, set_up=[])
    result_processed_status(received_file(referral, CHEM17))
    chem = Item.objects.get(item_list=referral.department.item_list, code="CHEM")
    second = ivls_referral(referral.department, items=[chem])
    assert second.lines.count() == 1
    result_processed_status(received_file(second, CHEM17, diagnostic_set_id="20261122_150000_18"))
    item_list = referral.department.item_list
    assert Item.objects.filter(item_list=item_list, auto_created=True).count() == 17
    assert second.lines.count() == 1 + 17


def test_bulk_charges_read_vat_rates_not_loaded_with_their_items_once(
    db, django_assert_num_queries
):
    consultation = ConsultationFactory()
    department = consultation.department
    rates = [VatRateFactory(rate=Decimal(r)) for r in ("10.00", "14.00", "24.00")]
    for i, rate in enumerate(rates * 2):
        lab_item(department, f"X{i}", price="5.00", vat_rate=rate)
    lab_item(department, "NOVAT", price="7.00")
    items = list(Item.objects.filter(item_list=department.item_list).order_by("code"))
    with django_assert_num_queries(2):  # the rates, the insert
        lines = consultation_lines_add(
            consultation=consultation,
            charges=[(item, Decimal("1.00") if item.code == "X0" else None) for item in items],
        )
    assert all(line.pk for line in lines)
    got = {
        line.item.code: (line.unit_price, line.vat_rate, line.description)
        for line in ConsultationLine.objects.filter(consultation=consultation).select_related(
            "item"
        )
    }
    assert got["X0"] == (Decimal("1.00"), Decimal("10.00"), "X0")
    assert got["X4"] == (Decimal("5.00"), Decimal("14.00"), "X4")
    assert got["NOVAT"] == (Decimal("7.00"), Decimal("0.00"), "NOVAT")
    assert [line.item.code for line in lines] == [item.code for item in items]


# --------------------------------------------------------------------------------------
# The embedded demo's SQLite: bulk inserts there return their ids too
# --------------------------------------------------------------------------------------

SQLITE_SCRIPT = """
import json
from django.db import connection
from tests.labs import test_matching_queries as t

counts = {}
for n in (4, 17):
    codes = t.CHEM17[:n]
    referral = t.chem_referral(codes)
    result_file, counts[n] = t.processed_with_queries(t.received_file(referral, codes))
    assert result_file.status == "matched", (result_file.status, result_file.error)
lines = sorted(
    (line.item.code, str(line.consultation_line.unit_price), line.results.count())
    for line in referral.lines.select_related("item", "consultation_line")
)
print(json.dumps({"vendor": connection.vendor, "counts": counts, "lines": lines}))
"""


def test_matching_adds_analytes_in_bulk_on_sqlite_too(tmp_path):
    # No Redis: the in-memory broker takes the publish and nothing processes the file, so
    # the script processes it itself and counts the queries.
    env = sqlite_env(tmp_path, CELERY_TASK_ALWAYS_EAGER="false")
    manage(env, "migrate", "--noinput", "-v0")
    got = json.loads(manage(env, "shell", "-c", SQLITE_SCRIPT).strip().splitlines()[-1])
    assert got["vendor"] == "sqlite"
    assert got["counts"]["4"] == got["counts"]["17"]
    expected = [(code, "0.00", 1) for code in CHEM17] + [("CHEM", "89.00", 0)]
    assert [tuple(line) for line in got["lines"]] == sorted(expected)
