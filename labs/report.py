"""The lab report of a referral, as the vet hands it to the owner (a PDF).

Everything printed is read here into plain rows, so the template only lays it out: the
clinic, client and patient (with the weight that went with the request), each run with its
instrument, time and results, results entered by hand, corrections, and the history of
every analyte this patient has been measured for before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from labs.charts import analyte_chart_svg
from labs.models import LabRun, Referral, ReferralLine, Result
from patients.selectors import weight_in
from pims.pdf import render_pdf

OUT_OF_RANGE_FLAGS = ("L", "H", "LL", "HH")
CRITICAL_FLAGS = ("LL", "HH")
FLAG_WORDS = {
    "L": "below the reference range",
    "H": "above the reference range",
    "LL": "below the critical limit",
    "HH": "above the critical limit",
}
_QUALIFIERS = ("<", ">", "<=", ">=", "≤", "≥")


def number_text(value: Decimal | None) -> str:
    """A stored number as a person writes it: 5.000000 -> 5, 0.250000 -> 0.25."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def value_text(result: Result) -> str:
    text = result.value_text
    qualifier = (result.qualifier or "").strip()
    if qualifier in _QUALIFIERS and not text.startswith(qualifier):
        return f"{qualifier}{text}"
    return text


def reference_text(low: Decimal | None, high: Decimal | None) -> str:
    if low is not None and high is not None:
        return f"{number_text(low)} – {number_text(high)}"
    if low is not None:
        return f"≥ {number_text(low)}"
    if high is not None:
        return f"≤ {number_text(high)}"
    return ""


def instrument_name(instrument: str) -> str:
    """'Catalyst_One' -> 'Catalyst One'."""
    return instrument.replace("_", " ").strip()


@dataclass
class ResultRow:
    name: str
    code: str
    value: str
    unit: str
    reference: str
    flag: str
    flag_words: str
    out_of_range: bool
    critical: bool
    detail: str = ""  # who entered it and when, for results entered by hand
    corrections: list[str] = field(default_factory=list)


@dataclass
class RunSection:
    title: str
    when: dt.datetime | None
    when_text: str
    rows: list[ResultRow]
    notes: str = ""
    withdrawn: list[str] = field(default_factory=list)
    by_hand: bool = False


@dataclass
class HistoryChart:
    name: str
    code: str
    unit: str
    svg: str
    count: int


def _local(when: dt.datetime | None, zone) -> dt.datetime | None:
    return timezone.localtime(when, zone) if when else None


def _stamp(when: dt.datetime | None, zone) -> str:
    local = _local(when, zone)
    return f"{local:%Y-%m-%d %H:%M}" if local else ""


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def _line_name(result: Result, lines_by_code: dict[str, ReferralLine]) -> str:
    line = result.referral_line or lines_by_code.get(result.code)
    if line is not None and line.item.name and line.item.name != result.code:
        return line.item.name
    return result.code


def _row(result: Result, lines_by_code, *, detail: str = "") -> ResultRow:
    flag = result.flag if result.flag in OUT_OF_RANGE_FLAGS else ""
    return ResultRow(
        name=_line_name(result, lines_by_code),
        code=result.code,
        value=value_text(result),
        unit=result.unit,
        reference=reference_text(result.low, result.high),
        flag=flag,
        flag_words=FLAG_WORDS.get(flag, ""),
        out_of_range=bool(flag),
        critical=flag in CRITICAL_FLAGS,
        detail=detail,
    )


def _earlier_text(earlier: Result, zone) -> str:
    value = f"{value_text(earlier)} {earlier.unit}".strip()
    if earlier.flag in OUT_OF_RANGE_FLAGS:
        value += f" ({earlier.flag})"
    return f"Corrected: earlier value {value} at {_stamp(earlier.created_at, zone)}"


def _changed(a: Result, b: Result) -> bool:
    return (a.value_text, a.unit, a.flag, a.low, a.high) != (
        b.value_text,
        b.unit,
        b.flag,
        b.low,
        b.high,
    )


def _pending_lines(
    lines: list[ReferralLine], current: list[Result], run_matched: bool
) -> list[str]:
    """Names of the lines nothing has been reported for yet (the done-lines rule)."""
    with_result = {r.referral_line_id for r in current if r.referral_line_id}
    codes = {r.code for r in current}
    pending = []
    for line in lines:
        item = line.item
        if line.pk in with_result:
            continue
        if item.is_ivls_analysis and item.yields:
            if any(code in codes for code in item.yields):
                continue
        elif item.is_ivls_analysis and run_matched:
            continue
        pending.append(item.name)
    return pending


def _history(patient_id: int, current: list[Result], until: dt.datetime, lines_by_code, zone):
    """A chart for each numeric analyte of this report measured for the patient before."""
    latest: dict[str, Result] = {}
    for result in current:
        if result.value_number is not None:
            latest[result.code] = result
    if not latest:
        return []
    rows = (
        Result.objects.filter(
            referral__consultation__patient_id=patient_id,
            code__in=list(latest),
            is_current=True,
            value_number__isnull=False,
        )
        .select_related("run")
        .order_by("id")
    )
    points: dict[str, list[tuple[dt.datetime, Decimal]]] = {code: [] for code in latest}
    earlier: dict[str, int] = dict.fromkeys(latest, 0)
    this_report = {result.pk for result in current}
    for row in rows:
        when = (row.run.run_time if row.run_id and row.run.run_time else None) or row.created_at
        this = latest[row.code]
        # A reprint shows the history as it stood: nothing measured after this report.
        if when > until or (this.unit and row.unit and row.unit != this.unit):
            continue
        points[row.code].append((_local(when, zone), row.value_number))
        if row.pk not in this_report:
            earlier[row.code] += 1
    charts = []
    for code, result in latest.items():
        if not earlier[code]:
            continue
        name = _line_name(result, lines_by_code)
        svg = analyte_chart_svg(
            points[code],
            low=result.low,
            high=result.high,
            unit=result.unit,
            width=330,
            height=150,
            title=name,
        )
        if svg:
            charts.append(HistoryChart(name, code, result.unit, svg, len(points[code])))
    return charts


def referral_report_context(referral: Referral) -> dict:
    referral = Referral.objects.select_related(
        "department", "consultation__patient__client", "consultation__vet"
    ).get(pk=referral.pk)
    department = referral.department
    zone = department.zone
    consultation = referral.consultation
    patient = consultation.patient
    lines = list(referral.lines.select_related("item").order_by("id"))
    lines_by_code = {line.item.code: line for line in lines if line.item.code}
    results = list(
        Result.objects.filter(referral=referral)
        .select_related("run", "referral_line__item", "entered_by")
        .order_by("id")
    )
    current = [r for r in results if r.is_current]
    superseded = [r for r in results if not r.is_current]

    def key(result: Result):
        return ("run", result.run_id) if result.run_id else ("hand", result.referral_line_id)

    earlier_by_key: dict[tuple, list[Result]] = {}
    for result in superseded:
        earlier_by_key.setdefault((key(result), result.code), []).append(result)

    runs = {
        run.pk: run
        for run in LabRun.objects.filter(referral=referral).order_by("run_time", "created_at", "id")
    }
    sections: dict[int | None, RunSection] = {}
    for run in runs.values():
        sections[run.pk] = RunSection(
            title=instrument_name(run.instrument),
            when=_local(run.run_time, zone),
            when_text=run.run_time_text,
            rows=[],
            notes=run.notes.strip(),
        )
    current_codes_by_key: dict[tuple, set[str]] = {}
    for result in current:
        detail = ""
        if result.run_id is None:
            who = _person(result.entered_by)
            detail = f"entered {_stamp(result.created_at, zone)}" + (f" by {who}" if who else "")
            section = sections.setdefault(
                None, RunSection("Entered by hand", None, "", [], by_hand=True)
            )
        else:
            section = sections[result.run_id]
        row = _row(result, lines_by_code, detail=detail)
        earlier = sorted(
            earlier_by_key.get((key(result), result.code), []), key=lambda r: (r.revision, r.pk)
        )
        row.corrections = [
            _earlier_text(old, zone)
            for old in earlier
            if old.revision < result.revision and _changed(old, result)
        ]
        section.rows.append(row)
        current_codes_by_key.setdefault(key(result), set()).add(result.code)
    for (group, code), olds in earlier_by_key.items():
        if code in current_codes_by_key.get(group, set()) or group[0] != "run":
            continue
        old = max(olds, key=lambda r: (r.revision, r.pk))
        if old.run_id in sections:
            sections[old.run_id].withdrawn.append(
                f"{_line_name(old, lines_by_code)}: earlier value "
                f"{value_text(old)} {old.unit}".rstrip()
                + f" at {_stamp(old.created_at, zone)} was withdrawn in a correction."
            )
    ordered = [sections[run_id] for run_id in runs if sections[run_id].rows or runs[run_id].notes]
    if None in sections:
        ordered.append(sections[None])

    weight = (
        patient.weights.filter(measured_at__lte=referral.created_at)
        .order_by("-measured_at", "-id")
        .first()
    )
    weight_text = ""
    if weight is not None:
        value = weight_in(weight, department.weight_unit).quantize(Decimal("0.01"))
        weight_text = f"{number_text(value)} {department.weight_unit}"
    referral_day = timezone.localdate(referral.created_at, zone)
    latest_time = max(
        [
            (r.run.run_time if r.run_id and r.run.run_time else None) or r.created_at
            for r in current
        ],
        default=timezone.now(),
    )
    return {
        "referral": referral,
        "department": department,
        "consultation": consultation,
        "patient": patient,
        "client": patient.client,
        "vet": _person(consultation.vet),
        "age": patient.age_on(referral_day),
        "weight": weight_text,
        "weight_measured": _local(weight.measured_at, zone) if weight else None,
        "referral_created": _local(referral.created_at, zone),
        "sections": ordered,
        "pending": _pending_lines(
            lines, current, any(run.review_state == LabRun.STATE_MATCHED for run in runs.values())
        ),
        "history": _history(patient.pk, current, latest_time, lines_by_code, zone),
        "has_flags": any(row.out_of_range for section in ordered for row in section.rows),
        "printed_at": timezone.localtime(timezone.now(), zone),
    }


def referral_report_pdf(referral: Referral) -> bytes:
    """The lab report of one referral as PDF bytes."""
    context = referral_report_context(referral)
    return render_pdf("pdf/lab_report.html", context, time_zone=context["department"].zone)
