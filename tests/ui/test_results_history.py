import datetime as dt
import re
from decimal import Decimal

from django.urls import reverse

from labs.charts import analyte_chart_svg
from labs.models import LabRun
from tests.factories import ConsultationFactory
from tests.ui.helpers import complete_chem17


def test_history_charts_every_numeric_analyte_over_time(
    vet_client, department, patient, vet, chem17
):
    order, analytes = chem17
    for day, glucose in ((1, "66"), (20, "101"), (40, "160")):
        consultation = ConsultationFactory(department=department, patient=patient, vet=vet)
        referral = complete_chem17(
            consultation, order, analytes, vet, values={"GLU": glucose}, run_id=f"d{day}"
        )
        LabRun.objects.filter(referral=referral).update(
            run_time=dt.datetime(2026, 1, day % 28 + 1, 10, tzinfo=dt.UTC)
            + dt.timedelta(days=day // 28 * 31)
        )
    html = vet_client.get(reverse("labs:patient_results", args=[patient.pk])).content.decode()
    section = re.search(r"-title\">Glucose <code>GLU</code>.*?</section>", html, re.S).group(0)
    assert section.count("<svg") == 1
    assert "3 results from 2026-01-02 to 2026-02-13" in section
    assert "reference 74–143 mg/dL" in section
    # Newest first in the table, with flags as text.
    values = re.findall(r'<td class="num value">(\d+)', section)
    assert values == ["160", "101", "66"]
    assert '<abbr title="high">H</abbr>' in section and '<abbr title="low">L</abbr>' in section


def test_history_shows_only_results_of_own_departments(
    vet_client, other_department, patient, chem17
):
    from tests.ui.helpers import chem17_catalog

    order, analytes = chem17_catalog(other_department)
    elsewhere = ConsultationFactory(department=other_department, patient=patient)
    complete_chem17(elsewhere, order, analytes)
    html = vet_client.get(reverse("labs:patient_results", args=[patient.pk])).content.decode()
    assert "Glucose" not in html and "No lab results" in html


def points(*pairs):
    return [(dt.date(2026, 1, day), value) for day, value in pairs]


def test_chart_is_empty_without_numbers():
    assert analyte_chart_svg(points((1, None)), low=1, high=2, unit="") == ""
    assert analyte_chart_svg([], low=None, high=None, unit="") == ""


def test_chart_draws_band_and_tells_outside_points_by_shape():
    svg = analyte_chart_svg(
        points((1, Decimal("66")), (5, Decimal("100")), (9, "160")),
        low=Decimal("74"),
        high=Decimal("143"),
        unit="mg/dL",
        width=400,
        height=150,
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'width="400" height="150"' in svg
    assert svg.count("<circle") == 1  # 100 is inside the band
    assert svg.count("<path") == 2  # 66 and 160 are outside: diamonds
    assert "reference 74–143 mg/dL" in svg
    assert "2026-01-01: 66 mg/dL (outside the reference range)" in svg
    assert "<rect" in svg


def test_chart_escapes_text_and_handles_one_sided_ranges():
    svg = analyte_chart_svg(points((1, 3)), low=None, high=5, unit="<&>", title='A "b"')
    assert "&lt;&amp;&gt;" in svg and "<&>" not in svg
    assert "reference at most 5" in svg
    assert svg.count("<circle") == 1


def test_chart_of_a_single_value_without_range():
    svg = analyte_chart_svg(points((3, "7.25")), low=None, high=None, unit="")
    assert "no reference range" in svg and "latest 7.25" in svg
    assert "<rect" not in svg
