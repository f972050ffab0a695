import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import ConsultationLine
from integrations.ivls.models import WorkRequest
from labs.models import Referral, Result
from labs.services import referral_create, result_record
from tests.factories import ConsultationFactory, lab_item
from tests.ui.helpers import complete_chem17


def page_html(http, consultation) -> str:
    response = http.get(reverse("labs:consultation_detail", args=[consultation.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_completed_chem17_shows_values_units_ranges_and_flags(
    vet_client, consultation, chem17, vet
):
    order, analytes = chem17
    referral = complete_chem17(consultation, order, analytes, vet)
    html = page_html(vet_client, consultation)
    assert referral.status == Referral.STATUS_COMPLETE
    assert f'<span class="ref-number status-complete">{referral.number}</span>' in html
    assert '<span class="status-word status-complete">complete</span>' in html
    glucose = re.search(r'<tr class="abnormal" data-code="GLU">(.*?)</tr>', html, re.S).group(1)
    assert "66" in glucose and "mg/dL" in glucose and "74–143" in glucose
    assert '<abbr title="low">L</abbr>' in glucose
    alkp = re.search(r'data-code="ALKP">(.*?)</tr>', html, re.S).group(1)
    assert '<abbr title="high">H</abbr>' in alkp
    crea = re.search(r'data-code="CREA">(.*?)</tr>', html, re.S).group(1)
    assert "0.5–1.8" in crea and "<abbr" not in crea
    # Nothing waits: the section does not poll.
    assert 'hx-trigger="every 5s' not in html


def test_section_polls_only_while_a_referral_waits(vet_client, consultation, chem17, vet):
    order, analytes = chem17
    referral = referral_create(consultation=consultation, items=[order], created_by=vet)
    assert referral.status == Referral.STATUS_QUEUED
    html = page_html(vet_client, consultation)
    assert 'hx-trigger="every 5s' in html
    assert "awaiting analyser" in html
    section = vet_client.get(reverse("labs:lab_section", args=[consultation.pk]))
    assert 'id="lab-section"' in section.content.decode()
    assert "every 5s" in section.content.decode()


def test_page_query_count_is_flat_in_the_number_of_referrals(
    vet_client, department, patient, vet, chem17
):
    order, analytes = chem17
    one = ConsultationFactory(department=department, patient=patient, vet=vet)
    many = ConsultationFactory(department=department, patient=patient, vet=vet)
    complete_chem17(one, order, analytes, vet)
    for _ in range(20):
        complete_chem17(many, order, analytes, vet)
    assert Result.objects.filter(referral__consultation=many).count() == 20 * 17
    page_html(vet_client, one)  # warm the session and the content-type caches

    counts = []
    for consultation in (one, many):
        with CaptureQueriesContext(connection) as queries:
            html = page_html(vet_client, consultation)
        counts.append(len(queries))
        assert html.count('class="referral"') == (1 if consultation is one else 20)
    assert counts[0] == counts[1], counts


def test_charges_list_every_line_with_zero_price_lines(vet_client, consultation, chem17, vet):
    order, analytes = chem17
    complete_chem17(consultation, order, analytes, vet)
    html = page_html(vet_client, consultation)
    charges = html[html.index('id="charges"') :]
    assert "Catalyst Chem 17" in charges and "89.00" in charges
    assert ConsultationLine.objects.filter(consultation=consultation).count() == 18
    assert charges.count('class="zero"') == 17


def test_dialog_lists_lab_items_marks_ivls_and_filters_by_code(
    vet_client, consultation, chem17, department
):
    order, _ = chem17
    lab_item(department, "UA", name="Urinalysis")
    html = vet_client.get(reverse("labs:lab_dialog", args=[consultation.pk])).content.decode()
    assert "<dialog data-modal" in html
    assert "Catalyst Chem 17" in html and "Urinalysis" in html
    chem_label = re.search(r"Catalyst Chem 17.*?</label>", html, re.S).group(0)
    assert "IVLS" in chem_label

    url = reverse("labs:lab_options", args=[consultation.pk])
    filtered = vet_client.get(url, {"q": "chem17"}).content.decode()
    assert "Catalyst Chem 17" in filtered and "Urinalysis" not in filtered
    # What is ticked stays listed (and ticked) whatever the filter.
    kept = vet_client.get(url, {"q": "urin", "item": str(order.pk)}).content.decode()
    assert "Urinalysis" in kept
    assert re.search(rf'value="{order.pk}" checked', kept)


def test_dialog_lists_orderable_tests_before_the_analytes_they_yield(
    vet_client, consultation, chem17, department
):
    order, analytes = chem17
    lab_item(department, "UA", name="Urinalysis")
    html = vet_client.get(reverse("labs:lab_dialog", args=[consultation.pk])).content.decode()
    # Albumin sorts before Catalyst Chem 17 by name, but the vet orders the Chem 17.
    albumin = analytes["ALB"]
    assert html.index(f'value="{order.pk}"') < html.index(f'value="{albumin.pk}"')
    assert html.index("Urinalysis") < html.index(f'value="{albumin.pk}"')


def test_saving_the_dialog_creates_a_queued_referral_with_its_work_request(
    vet_client, consultation, chem17, department
):
    order, _ = chem17
    manual = lab_item(department, "UA", name="Urinalysis", price="25.00")
    response = vet_client.post(
        reverse("labs:referral_create", args=[consultation.pk]),
        {"item": [str(order.pk), str(manual.pk)]},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    referral = Referral.objects.get(consultation=consultation)
    assert referral.status == Referral.STATUS_QUEUED
    assert [line.item.code for line in referral.lines.order_by("id")] == ["CHEM17", "UA"]
    assert WorkRequest.objects.filter(referral=referral, action="New").count() == 1
    assert f"Referral {referral.number} saved" in html
    assert 'id="dialog-slot" hx-swap-oob="innerHTML"' in html
    assert "every 5s" in html


def test_saving_an_empty_dialog_keeps_it_open_with_the_reason(vet_client, consultation, chem17):
    response = vet_client.post(
        reverse("labs:referral_create", args=[consultation.pk]), {}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Retarget"] == "#dialog-slot"
    assert "Choose at least one lab item or panel." in response.content.decode()
    assert not Referral.objects.exists()


def test_result_entered_by_hand_shows_and_completes_the_referral(
    vet_client, consultation, department, vet
):
    manual = lab_item(department, "UA-SG", name="Urine specific gravity")
    referral = referral_create(consultation=consultation, items=[manual], created_by=vet)
    line = referral.lines.get()
    html = page_html(vet_client, consultation)
    assert "Enter result" in html
    response = vet_client.post(
        reverse("labs:result_enter", args=[line.pk]),
        {"value": "1.050", "unit": "", "low": "1.015", "high": "1.045"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_COMPLETE
    row = re.search(r'data-code="UA-SG">(.*?)</tr>', html, re.S).group(1)
    assert "1.050" in row and "1.015–1.045" in row and '<abbr title="high">H</abbr>' in row


def test_corrected_result_is_marked_and_its_earlier_value_shown_on_demand(
    vet_client, consultation, department, vet
):
    manual = lab_item(department, "FRUC", name="Fructosamine", unit="μmol/L")
    referral = referral_create(consultation=consultation, items=[manual], created_by=vet)
    line = referral.lines.get()
    result_record(line=line, value="410", entered_by=vet)
    result_record(line=line, value="380", entered_by=vet)
    html = page_html(vet_client, consultation)
    row = re.search(r'data-code="FRUC">(.*?)</tr>', html, re.S).group(1)
    assert "380" in row and "corrected" in row and "410" not in row
    history = vet_client.get(reverse("labs:line_history", args=[line.pk])).content.decode()
    assert "410" in history and "380" in history


def test_removing_a_line_and_cancelling_a_referral(vet_client, consultation, department, vet):
    first = lab_item(department, "A1", name="Test A")
    second = lab_item(department, "B1", name="Test B")
    referral = referral_create(consultation=consultation, items=[first, second], created_by=vet)
    line = referral.lines.get(item=first)
    html = vet_client.post(
        reverse("labs:line_remove", args=[line.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Test A removed." in html
    assert list(referral.lines.values_list("item__code", flat=True)) == ["B1"]
    html = vet_client.post(
        reverse("labs:referral_cancel", args=[referral.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    referral.refresh_from_db()
    assert referral.status == Referral.STATUS_CANCELLED
    assert '<span class="status-word status-cancelled">cancelled</span>' in html


def test_a_referral_with_results_cannot_be_cancelled(vet_client, consultation, chem17, vet):
    order, analytes = chem17
    referral = complete_chem17(consultation, order, analytes, vet)
    html = page_html(vet_client, consultation)
    assert "Cancel referral" not in html
    response = vet_client.post(reverse("labs:referral_cancel", args=[referral.pk]), follow=True)
    assert "cannot be cancelled" in response.content.decode()


@pytest.mark.parametrize(
    ("days_old", "warned"), [(0, False), (3, True)], ids=["today", "three-days-old"]
)
def test_weight_older_than_the_consultation_is_flagged(vet_client, consultation, days_old, warned):
    import datetime as dt

    weight = consultation.patient.weights.get()
    weight.measured_at = consultation.started_at - dt.timedelta(days=days_old)
    weight.save()
    html = page_html(vet_client, consultation)
    assert ("the weight goes to the analyser" in html) is warned
    assert "27.4 kg" in html


def test_header_shows_patient_client_and_vet(vet_client, consultation):
    html = page_html(vet_client, consultation)
    assert "Rosa" in html and "Dog" in html and "Labrador Retriever" in html
    assert "Female, spayed" in html
    assert consultation.patient.client.full_name in html
    assert "Anna Korhonen" in html
