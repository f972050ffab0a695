"""The lab report PDF: what a vet hands to an owner, read back with pdftotext."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.services import consultation_line_add
from labs.models import LabRun, ReferralLine, Result
from labs.report import referral_report_context, referral_report_pdf
from labs.services import referral_create, result_record
from tests.documents.pdftools import pdf_pages, pdf_text, pdf_to_pngs
from tests.factories import (
    ClientFactory,
    ConsultationFactory,
    DepartmentFactory,
    MembershipFactory,
    PatientFactory,
    UserFactory,
    WeightFactory,
    ivls_item,
    lab_item,
)

pytestmark = pytest.mark.django_db

D = Decimal


def _result(run, referral, line, code, value, unit, low=None, high=None, **kw):
    number = D(value) if re.fullmatch(r"[\d.]+", value) else None
    flag = kw.pop("flag", "")
    return Result.objects.create(
        run=run,
        revision=kw.pop("revision", 1),
        referral=referral,
        referral_line=line,
        code=code,
        value_text=value,
        value_number=number,
        unit=unit,
        low=None if low is None else D(low),
        high=None if high is None else D(high),
        flag=flag,
        **kw,
    )


def _run(referral, department, instrument, set_id, when, **kw):
    run = LabRun.objects.create(
        unit_key=str(department.pk),
        referral=referral,
        instrument=instrument,
        diagnostic_set_id=set_id,
        run_time=when,
        run_time_text=f"{when:%Y-%m-%dT%H:%M:%S}",
        review_state=LabRun.STATE_MATCHED,
        **kw,
    )
    run.departments.add(department)
    return run


@pytest.fixture
def lab_case():
    """A dog with a chemistry run (one value corrected), a SNAP test, a result entered by hand
    and, a year earlier, results for two of the same analytes."""
    department = DepartmentFactory(
        name="Kallio Animal Clinic",
        address="Fleminginkatu 12, 00530 Helsinki",
        phone="+358 9 123 4567",
        email="kallio@example.org",
        time_zone="Europe/Helsinki",
    )
    vet = UserFactory(username="vet-anna", first_name="Anna", last_name="Korhonen")
    MembershipFactory(user=vet, department=department)
    client = ClientFactory(
        first_name="Maria",
        last_name="Virtanen",
        address="Porthaninkatu 3 A 5",
        postal_code="00530",
        city="Helsinki",
    )
    patient = PatientFactory(
        client=client,
        name="Rosa",
        breed="Labrador Retriever",
        sex="FEMALE_SPAYED",
        birth_date=dt.date(2019, 3, 14),
    )
    now = timezone.now()
    WeightFactory(patient=patient, value=D("26.10"), measured_at=now - dt.timedelta(days=400))
    WeightFactory(patient=patient, value=D("27.40"), measured_at=now - dt.timedelta(hours=2))

    chem = ivls_item(department, "CHEM10", name="Chem 10", yields=["GLU", "CREA", "BUN"])
    glu = lab_item(department, "GLU", name="Glucose")
    crea = lab_item(department, "CREA", name="Creatinine")
    bun = lab_item(department, "BUN", name="Urea")
    snap = ivls_item(department, "FELV", name="SNAP FeLV", price="35.00")
    usg = lab_item(department, "USG", name="Urine specific gravity", price="12.00")

    # A year ago: glucose and creatinine, both normal.
    old_consultation = ConsultationFactory(patient=patient, department=department, vet=vet)
    old = referral_create(consultation=old_consultation, items=[chem, glu, crea], created_by=vet)
    old_lines = {line.item.code: line for line in old.lines.all()}
    old_run = _run(old, department, "Catalyst_One", "old-1", now - dt.timedelta(days=380))
    _result(old_run, old, old_lines["GLU"], "GLU", "5.9", "mmol/L", "3.9", "7.9", flag="N")
    _result(old_run, old, old_lines["CREA"], "CREA", "88", "µmol/L", "44", "159", flag="N")

    consultation = ConsultationFactory(patient=patient, department=department, vet=vet)
    referral = referral_create(
        consultation=consultation, items=[chem, glu, crea, bun, snap, usg], created_by=vet
    )
    WeightFactory(patient=patient, value=D("30.00"), measured_at=now + dt.timedelta(days=3))
    lines = {line.item.code: line for line in referral.lines.all()}
    run_time = now - dt.timedelta(minutes=30)
    chem_run = _run(
        referral,
        department,
        "Catalyst_One",
        "ds-100",
        run_time,
        notes="Sample slightly lipemic.\nRecheck glucose after fasting.",
        current_revision=2,
    )
    # Revision 1 said glucose 7.1; the corrected run (revision 2) says 17.9.
    _result(
        chem_run, referral, lines["GLU"], "GLU", "7.1", "mmol/L", "3.9", "7.9",
        flag="N", is_current=False, created_at=run_time,
    )  # fmt: skip
    _result(chem_run, referral, lines["BUN"], "BUN", "5.2", "mmol/L", "2.5", "9.6",
            flag="N", is_current=False, created_at=run_time)  # fmt: skip
    _result(
        chem_run, referral, lines["GLU"], "GLU", "17.9", "mmol/L", "3.9", "7.9",
        revision=2, flag="H", critical_high=D("25"),
    )  # fmt: skip
    _result(
        chem_run, referral, lines["CREA"], "CREA", "30", "µmol/L", "44", "159",
        revision=2, flag="L",
    )  # fmt: skip
    _result(
        chem_run, referral, lines["BUN"], "BUN", "5.2", "mmol/L", "2.5", "9.6",
        revision=2, flag="N",
    )  # fmt: skip
    _result(
        chem_run, referral, None, "K", "7.9", "mmol/L", "3.5", "5.8",
        revision=2, flag="HH", critical_high=D("7.0"),
    )  # fmt: skip
    snap_run = _run(referral, department, "SNAP", "ds-101", run_time + dt.timedelta(minutes=5))
    _result(snap_run, referral, lines["FELV"], "FELV", "Negative", "")
    result_record(line=lines["USG"], value="1.010", low=D("1.015"), high=D("1.045"), entered_by=vet)
    result_record(line=lines["USG"], value="1.022", low=D("1.015"), high=D("1.045"), entered_by=vet)
    return {
        "department": department,
        "vet": vet,
        "referral": referral,
        "patient": patient,
        "client": client,
        "run_time": run_time,
    }


def _row(text: str, *cells: str) -> bool:
    """True when one line of the layout text holds the cells in order."""
    pattern = r"\s+".join(re.escape(cell) for cell in cells)
    return any(re.search(pattern, line) for line in text.splitlines())


def test_lab_report_prints_header_client_and_patient(lab_case, tmp_path):
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    assert "Kallio Animal Clinic" in text
    assert "Fleminginkatu 12, 00530 Helsinki" in text
    assert "+358 9 123 4567" in text
    assert "Laboratory report" in text
    assert str(lab_case["referral"].number) in text
    assert "Partial" in text or "Complete" in text
    assert "Maria Virtanen" in text
    assert "Rosa" in text
    assert "Dog" in text
    assert "Labrador Retriever" in text
    assert "Female, spayed" in text
    assert re.search(r"Age\s+\d+ y", text)


def test_lab_report_prints_the_weight_sent_with_the_referral(lab_case, tmp_path):
    """The latest weight when the referral was made, not one measured afterwards."""
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    assert re.search(r"Weight\s+27\.4 kg", text)
    assert "30 kg" not in text


def test_lab_report_prints_results_with_units_ranges_and_flags(lab_case, tmp_path):
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    assert _row(text, "Glucose", "17.9", "mmol/L", "3.9 – 7.9", "H")
    assert _row(text, "Creatinine", "30", "µmol/L", "44 – 159", "L")
    assert _row(text, "K", "7.9", "mmol/L", "3.5 – 5.8", "HH")
    assert _row(text, "Urea", "5.2", "mmol/L", "2.5 – 9.6")
    assert not _row(text, "Urea", "5.2", "mmol/L", "2.5 – 9.6", "N")
    assert _row(text, "SNAP FeLV", "Negative")
    assert "Flags: H above and L below the reference range" in text


def test_lab_report_marks_out_of_range_values_in_bold(lab_case):
    context = referral_report_context(lab_case["referral"])
    rows = {row.code: row for section in context["sections"] for row in section.rows}
    assert rows["GLU"].out_of_range and rows["GLU"].flag == "H"
    assert rows["K"].critical and rows["K"].flag == "HH"
    assert not rows["BUN"].out_of_range and rows["BUN"].flag == ""
    html = render_to_string("pdf/_lab_results_table.html", {"rows": list(rows.values())})
    assert re.search(r'<tr class="out critical">\s*<td>K', html)
    assert re.search(r'<tr class="">\s*<td>Urea', html)


def test_lab_report_shows_each_run_with_instrument_and_local_time(lab_case, tmp_path):
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    local = timezone.localtime(lab_case["run_time"], lab_case["department"].zone)
    assert f"Catalyst One {local:%Y-%m-%d %H:%M}" in re.sub(r"\s+", " ", text)
    assert "SNAP" in text
    assert "Sample slightly lipemic." in text
    assert "Recheck glucose after fasting." in text


def test_lab_report_includes_results_entered_by_hand_with_their_correction(lab_case, tmp_path):
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    assert "Entered by hand" in text
    assert _row(text, "Urine specific gravity", "1.022", "1.015 – 1.045")
    assert "by Anna Korhonen" in text
    assert "Corrected: earlier value 1.010 (L)" in text


def test_lab_report_notes_the_value_a_corrected_run_replaced(lab_case, tmp_path):
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    local = timezone.localtime(lab_case["run_time"], lab_case["department"].zone)
    assert f"Corrected: earlier value 7.1 mmol/L at {local:%Y-%m-%d %H:%M}" in text
    # Urea came out the same in both revisions: nothing to note.
    assert "earlier value 5.2" not in text


def test_lab_report_charts_history_only_for_analytes_measured_before(lab_case, tmp_path):
    context = referral_report_context(lab_case["referral"])
    charts = {chart.code: chart for chart in context["history"]}
    assert set(charts) == {"GLU", "CREA"}
    assert charts["GLU"].count == 2
    assert charts["GLU"].svg.startswith("<svg")
    text = pdf_text(referral_report_pdf(lab_case["referral"]), tmp_path)
    assert "History" in text


def test_lab_report_numbers_its_pages(lab_case, tmp_path):
    pdf = referral_report_pdf(lab_case["referral"])
    pages = pdf_pages(pdf, tmp_path)
    text = pdf_text(pdf, tmp_path)
    assert f"Page 1 of {pages}" in text
    assert f"Page {pages} of {pages}" in text


def test_lab_report_lists_lines_not_yet_reported(lab_case, tmp_path):
    referral = lab_case["referral"]
    extra = lab_item(lab_case["department"], "T4", name="Total T4")
    ReferralLine.objects.create(
        referral=referral,
        item=extra,
        consultation_line=consultation_line_add(consultation=referral.consultation, item=extra),
    )
    text = pdf_text(referral_report_pdf(referral), tmp_path)
    assert "Not yet reported: Total T4" in text


def test_lab_report_view_serves_the_pdf_to_members_only(lab_case, client):
    referral = lab_case["referral"]
    url = reverse("labs:referral_report_pdf", args=[referral.pk])
    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider)  # a member of another department
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(lab_case["vet"])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert f"lab-report-{referral.number}.pdf" in response["Content-Disposition"]


def test_lab_report_view_needs_sign_in(lab_case, client):
    url = reverse("labs:referral_report_pdf", args=[lab_case["referral"].pk])
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_lab_report_pages_render_as_images(lab_case, tmp_path):
    pngs = pdf_to_pngs(referral_report_pdf(lab_case["referral"]), tmp_path / "png")
    assert pngs and all(path.stat().st_size > 5000 for path in pngs)
