"""The vet's and the admin's lab pages: the consultation, results history, worklist, review
queue and the lab item list. Thin: they parse input, call one service or selector, render.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from billing import services as billing_services
from billing.models import ConsultationLine, Item
from billing.selectors import item_list_for_department
from labs import services
from labs.charts import analyte_chart_svg
from labs.forms import (
    CancelForm,
    DismissForm,
    LabItemForm,
    LabPanelForm,
    ResultEntryForm,
)
from labs.models import LabPanel, LabRun, Referral, ReferralLine, Result, ResultDocument
from labs.selectors import lab_items_for_item_list, referrals_for_consultation
from patients.models import Consultation, Patient
from patients.selectors import latest_weight
from pims import access
from pims.permissions import (
    EDIT_CLINICAL,
    EDIT_ITEM_LIST,
    ENTER_RESULTS,
    VIEW_CLINICAL,
    WORK_REVIEW_QUEUE,
)

# While a referral is in one of these, results may still arrive: the section polls.
WAITING_STATUSES = (Referral.STATUS_QUEUED, Referral.STATUS_SENT, Referral.STATUS_PARTIAL)
ACTIVE_STATUSES = (Referral.STATUS_OPEN, *WAITING_STATUSES)
REVIEW_STATES = (LabRun.STATE_UNMATCHED, LabRun.STATE_NEEDS_REVIEW)


FLAG_WORDS = {"H": "high", "HH": "critically high", "L": "low", "LL": "critically low"}


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _plain(number: Decimal | None) -> str:
    """A stored Decimal as written on a report: 74, 0.5, 1.25 (no trailing zeros)."""
    if number is None:
        return ""
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def range_text(low: Decimal | None, high: Decimal | None) -> str:
    if low is not None and high is not None:
        return f"{_plain(low)}–{_plain(high)}"
    if low is not None:
        return f"≥ {_plain(low)}"
    if high is not None:
        return f"≤ {_plain(high)}"
    return ""


def _decorate(result: Result) -> Result:
    """Display fields for one result, shared by every table that shows results."""
    qualifier = result.qualifier if result.qualifier in ("<", ">") else ""
    if qualifier and result.value_text.startswith(qualifier):
        qualifier = ""
    result.display_value = qualifier + result.value_text
    result.range_text = range_text(result.low, result.high)
    result.flag_words = FLAG_WORDS.get(result.flag, "")
    return result


# --- The consultation page ----------------------------------------------------------------


@dataclass
class LineRow:
    line: ReferralLine
    results: list[Result] = field(default_factory=list)
    ordering: bool = False
    ordering_done: bool = False
    can_enter: bool = False
    can_remove: bool = False


@dataclass
class ReferralBlock:
    referral: Referral
    rows: list[LineRow]
    loose_results: list[Result]
    documents: list[ResultDocument]
    can_cancel: bool
    waiting: bool


def _earlier_values(referral_ids: list[int]) -> dict[tuple[int, str], set[str]]:
    """Superseded values per (referral, Code), in one query for the whole page."""
    earlier: dict[tuple[int, str], set[str]] = defaultdict(set)
    rows = Result.objects.filter(referral_id__in=referral_ids, is_current=False).values_list(
        "referral_id", "code", "value_text"
    )
    for referral_id, code, value in rows:
        earlier[(referral_id, code)].add(value)
    return earlier


def _referral_block(referral: Referral, earlier: dict) -> ReferralBlock:
    """Arrange one referral's prefetched lines and results for the table (no queries)."""
    by_line: dict[int, list[Result]] = defaultdict(list)
    loose: list[Result] = []
    for result in referral.current_results:
        _decorate(result)
        # A corrected run re-sends every result; only a value that changed is "corrected".
        result.corrected = bool(
            earlier.get((referral.pk, result.code), set()) - {result.value_text}
        )
        if result.referral_line_id:
            by_line[result.referral_line_id].append(result)
        else:
            loose.append(result)
    codes = {result.code for result in referral.current_results}
    open_for_change = referral.status not in (Referral.STATUS_CANCELLED, Referral.STATUS_COMPLETE)
    rows = []
    for line in referral.lines.all():
        item = line.item
        results = by_line.get(line.id, [])
        ordering = bool(item.is_ivls_analysis and item.yields)
        ordering_done = ordering and any(code in codes for code in item.yields)
        from_analyser = any(result.run_id for result in results)
        rows.append(
            LineRow(
                line=line,
                results=results,
                ordering=ordering,
                ordering_done=ordering_done,
                can_enter=(
                    referral.status != Referral.STATUS_CANCELLED
                    and not item.is_ivls_analysis
                    and not line.added_by_matching
                    and not from_analyser
                ),
                can_remove=open_for_change and not results and not ordering_done,
            )
        )
    return ReferralBlock(
        referral=referral,
        rows=rows,
        loose_results=loose,
        documents=list(referral.documents.all()),
        can_cancel=referral.status
        in (Referral.STATUS_OPEN, Referral.STATUS_QUEUED, Referral.STATUS_SENT)
        and not referral.current_results,
        waiting=referral.status in WAITING_STATUSES,
    )


def _charges(consultation: Consultation) -> tuple[list[ConsultationLine], Decimal]:
    charges = list(
        ConsultationLine.objects.filter(consultation=consultation)
        .select_related("item")
        .order_by("added_at", "id")
    )
    for line in charges:
        line.total = line.quantity * line.unit_price
    return charges, sum((line.total for line in charges), Decimal("0"))


def _lab_context(request, consultation: Consultation, **extra) -> dict:
    """The laboratory section, and the charges it changes (swapped in out of band when the
    section alone is rendered: ordering or matching adds charge lines)."""
    referrals = list(referrals_for_consultation(consultation))
    earlier = _earlier_values([referral.pk for referral in referrals])
    charges, total = _charges(consultation)
    return {
        "charges": charges,
        "charges_total": total,
        "charges_oob": True,
        "consultation": consultation,
        "blocks": [_referral_block(referral, earlier) for referral in referrals],
        "polling": any(referral.status in WAITING_STATUSES for referral in referrals),
        "can_edit": access.can(request, EDIT_CLINICAL),
        "can_enter_results": access.can(request, ENTER_RESULTS),
        **extra,
    }


def _consultation_for(request, consultation_id: int, permission: str = VIEW_CLINICAL):
    """The consultation, if the user is a member of its department (404 otherwise)."""
    consultation = get_object_or_404(
        Consultation.objects.select_related("patient__client", "department", "vet"),
        pk=consultation_id,
    )
    access.department_object_enter(request, consultation.department_id, permission)
    return consultation


def _weight_note(consultation: Consultation, weight) -> str:
    zone = consultation.department.zone
    if weight is None:
        return "No weight recorded: the weight goes to the analyser with lab requests."
    measured = timezone.localdate(weight.measured_at, zone)
    if measured < timezone.localdate(consultation.started_at, zone):
        return (
            f"The latest weight is from {measured:%d.%m.%Y}, before this consultation: "
            "the weight goes to the analyser, record today's."
        )
    return ""


@login_required
def consultation_detail(request, consultation_id: int):
    consultation = _consultation_for(request, consultation_id)
    weight = latest_weight(consultation.patient)
    if weight is not None:
        weight.text = f"{_plain(weight.value)} {weight.unit}"
    context = _lab_context(request, consultation, charges_oob=False)
    context.update(
        {
            "patient": consultation.patient,
            "client": consultation.patient.client,
            "weight": weight,
            "weight_note": _weight_note(consultation, weight),
            "age": consultation.patient.age_on(
                timezone.localdate(consultation.started_at, consultation.department.zone)
            ),
        }
    )
    return render(request, "labs/consultation_detail.html", context)


def _lab_section(request, consultation: Consultation, **extra) -> HttpResponse:
    return render(request, "labs/_lab_section.html", _lab_context(request, consultation, **extra))


@login_required
def lab_section(request, consultation_id: int):
    """The laboratory section alone: what the page polls while results are awaited."""
    return _lab_section(request, _consultation_for(request, consultation_id))


def _after_change(request, consultation: Consultation, *, error: str = "", notice: str = ""):
    """htmx: the refreshed section (with the message in it); otherwise back to the page."""
    if request.htmx:
        return _lab_section(request, consultation, lab_error=error, lab_notice=notice)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect("labs:consultation_detail", consultation_id=consultation.pk)


# --- The laboratory dialog ----------------------------------------------------------------


def _ids(values) -> list[int]:
    out = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


def _dialog_context(request, consultation: Consultation, **extra) -> dict:
    item_list = item_list_for_department(consultation.department)
    q = request.GET.get("q", "").strip()
    chosen_items = set(_ids(request.GET.getlist("item")))
    chosen_panels = set(_ids(request.GET.getlist("panel")))
    items: list[Item] = []
    panels: list[LabPanel] = []
    if item_list is not None:
        item_qs = lab_items_for_item_list(item_list.pk)
        panel_qs = LabPanel.objects.filter(item_list=item_list).prefetch_related(
            Prefetch("items", queryset=Item.objects.order_by("name", "id"))
        )
        if q:
            # What is already ticked stays listed, so filtering never loses a choice.
            item_qs = item_qs.filter(
                Q(name__icontains=q) | Q(code__icontains=q) | Q(pk__in=chosen_items)
            )
            panel_qs = panel_qs.filter(
                Q(name__icontains=q) | Q(code__icontains=q) | Q(pk__in=chosen_panels)
            )
        # Analytes an ordering item yields are not ordered on their own: list them last.
        yielded = set(
            code
            for yields in lab_items_for_item_list(item_list.pk)
            .exclude(yields=[])
            .values_list("yields", flat=True)
            for code in yields
        )
        items = sorted(
            item_qs,
            key=lambda i: (i.pk not in chosen_items, i.code in yielded, i.name.lower(), i.pk),
        )
        panels = sorted(panel_qs, key=lambda p: (p.pk not in chosen_panels, p.name.lower(), p.pk))
    return {
        "consultation": consultation,
        "q": q,
        "items": items,
        "panels": panels,
        "chosen_items": chosen_items,
        "chosen_panels": chosen_panels,
        "has_item_list": item_list is not None,
        **extra,
    }


@login_required
def lab_dialog(request, consultation_id: int):
    consultation = _consultation_for(request, consultation_id, EDIT_CLINICAL)
    return render(request, "labs/_lab_dialog.html", _dialog_context(request, consultation))


@login_required
def lab_options(request, consultation_id: int):
    consultation = _consultation_for(request, consultation_id, EDIT_CLINICAL)
    return render(request, "labs/_lab_options.html", _dialog_context(request, consultation))


@login_required
def referral_create(request, consultation_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    consultation = _consultation_for(request, consultation_id, EDIT_CLINICAL)
    item_list = item_list_for_department(consultation.department)
    item_ids = _ids(request.POST.getlist("item"))
    panel_ids = _ids(request.POST.getlist("panel"))
    items = list(Item.objects.filter(pk__in=item_ids, item_list=item_list, kind=Item.KIND_LAB))
    items.sort(key=lambda item: item_ids.index(item.pk))
    panels = list(LabPanel.objects.filter(pk__in=panel_ids, item_list=item_list))
    try:
        referral = services.referral_create(
            consultation=consultation, items=items, panels=panels, created_by=request.user
        )
    except ValidationError as error:
        if request.htmx:
            # Keep the dialog open with the choices made and the reason.
            request.GET = request.POST
            response = render(
                request,
                "labs/_lab_dialog.html",
                _dialog_context(request, consultation, dialog_error=_error_text(error)),
            )
            response["HX-Retarget"] = "#dialog-slot"
            response["HX-Reswap"] = "innerHTML"
            return response
        messages.error(request, _error_text(error))
        return redirect("labs:consultation_detail", consultation_id=consultation.pk)
    notice = f"Referral {referral.number} saved ({referral.get_status_display()})."
    if request.htmx:
        section = render_to_string(
            "labs/_lab_section.html",
            _lab_context(request, consultation, lab_notice=notice),
            request=request,
        )
        # Close the dialog: empty its slot out of band.
        closing = '<div id="dialog-slot" hx-swap-oob="innerHTML"></div>'
        return HttpResponse(section + closing)
    messages.success(request, notice)
    return redirect("labs:consultation_detail", consultation_id=consultation.pk)


# --- Changing a referral ------------------------------------------------------------------


def _referral_for(request, referral_id: int, permission: str) -> Referral:
    referral = get_object_or_404(Referral.objects.select_related("consultation"), pk=referral_id)
    access.department_object_enter(request, referral.department_id, permission)
    return referral


def _line_for(request, line_id: int, permission: str) -> ReferralLine:
    line = get_object_or_404(
        ReferralLine.objects.select_related("referral__consultation", "item"), pk=line_id
    )
    access.department_object_enter(request, line.referral.department_id, permission)
    return line


@login_required
def referral_cancel(request, referral_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    referral = _referral_for(request, referral_id, EDIT_CLINICAL)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.referral_cancel(referral=referral, reason=reason, cancelled_by=request.user)
    except ValidationError as error:
        return _after_change(request, referral.consultation, error=_error_text(error))
    return _after_change(
        request, referral.consultation, notice=f"Referral {referral.number} cancelled."
    )


@login_required
def line_remove(request, line_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    line = _line_for(request, line_id, EDIT_CLINICAL)
    consultation = line.referral.consultation
    try:
        services.referral_line_remove(line=line, removed_by=request.user)
    except ValidationError as error:
        return _after_change(request, consultation, error=_error_text(error))
    return _after_change(request, consultation, notice=f"{line.item.name} removed.")


@login_required
def result_enter(request, line_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    line = _line_for(request, line_id, ENTER_RESULTS)
    consultation = line.referral.consultation
    form = ResultEntryForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        return _after_change(
            request, consultation, error=f"{line.item.name}: the result was not saved. {errors}"
        )
    data = form.cleaned_data
    try:
        services.result_record(
            line=line,
            value=data["value"],
            unit=data["unit"],
            low=data["low"],
            high=data["high"],
            entered_by=request.user,
        )
    except ValidationError as error:
        return _after_change(request, consultation, error=_error_text(error))
    return _after_change(request, consultation, notice=f"{line.item.name}: result saved.")


@login_required
def line_history(request, line_id: int):
    """Earlier values of a corrected line, loaded when the vet opens them."""
    line = _line_for(request, line_id, VIEW_CLINICAL)
    # Revisions of an analyser run may not name the line; they name the referral and Code.
    same = Q(referral_line=line)
    if line.item.code:
        same |= Q(referral_id=line.referral_id, code=line.item.code)
    results = list(
        Result.objects.filter(same)
        .select_related("run", "entered_by")
        .order_by("-created_at", "-revision", "-id")
    )
    return render(request, "labs/_line_history.html", {"line": line, "results": results})


@login_required
def document_download(request, document_id: int):
    """An analyser's PDF, only for members of a department it belongs to (never public)."""
    document = get_object_or_404(ResultDocument.objects.select_related("referral"), pk=document_id)
    member_ids = set(access.member_department_ids(request))
    allowed = (document.referral is not None and document.referral.department_id in member_ids) or (
        document.departments.filter(pk__in=member_ids).exists()
    )
    if not allowed:
        raise Http404("Not found.")
    try:
        handle = document.pdf.open("rb")
    except FileNotFoundError as error:
        raise Http404("The report file is missing.") from error
    name = document.file_name or f"{document.diagnostic_set_id or document.pk}.pdf"
    return FileResponse(handle, content_type="application/pdf", filename=name)


# --- Results history ----------------------------------------------------------------------


@dataclass
class AnalyteHistory:
    code: str
    name: str
    unit: str
    results: list[Result]
    chart: str
    has_band: bool = False


def _when(result: Result):
    if result.run_id and result.run.run_time:
        return result.run.run_time
    return result.created_at


@access.department_required(VIEW_CLINICAL)
def patient_results(request, patient_id: int):
    patient = get_object_or_404(Patient.objects.select_related("client"), pk=patient_id)
    results = list(
        Result.objects.filter(
            referral__consultation__patient=patient,
            referral__department_id__in=access.member_department_ids(request),
            is_current=True,
        )
        .select_related("run", "referral", "referral_line__item")
        .order_by("code", "created_at", "id")
    )
    grouped: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        _decorate(result)
        grouped[result.code or "(no code)"].append(result)
    analytes = []
    for code, rows in grouped.items():
        rows.sort(key=lambda r: (_when(r), r.id))
        latest = rows[-1]
        name = next((r.referral_line.item.name for r in reversed(rows) if r.referral_line_id), code)
        numeric = [(_when(r), r.value_number) for r in rows if r.value_number is not None]
        chart = ""
        if numeric:
            chart = analyte_chart_svg(
                numeric,
                low=latest.low,
                high=latest.high,
                unit=latest.unit,
                width=560,
                height=170,
                title=name,
            )
        rows.reverse()  # newest first in the table
        has_band = latest.low is not None or latest.high is not None
        # analyte_chart_svg escapes every text it writes.
        svg = mark_safe(chart)  # noqa: S308
        analytes.append(AnalyteHistory(code, name, latest.unit, rows, svg, has_band))
    analytes.sort(key=lambda a: a.name.lower())
    return render(
        request,
        "labs/patient_results.html",
        {"patient": patient, "client": patient.client, "analytes": analytes},
    )


# --- Worklist and review queue ------------------------------------------------------------


@access.department_required(VIEW_CLINICAL)
def worklist(request):
    department = request.department
    status = request.GET.get("status", "active")
    valid = {value for value, _ in Referral.STATUSES}
    counts = dict(
        Referral.objects.filter(department=department)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    referrals = Referral.objects.filter(department=department)
    if status in valid:
        referrals = referrals.filter(status=status)
    else:
        status = "active"
        referrals = referrals.filter(status__in=ACTIVE_STATUSES)
    referrals = list(
        referrals.select_related("consultation__patient__client", "created_by")
        .prefetch_related(
            Prefetch("lines", queryset=ReferralLine.objects.select_related("item").order_by("id"))
        )
        .order_by("-created_at", "-id")[:200]
    )
    tabs = [("active", "Active", sum(counts.get(s, 0) for s in ACTIVE_STATUSES))]
    tabs += [
        (value, label.capitalize(), counts.get(value, 0)) for value, label in Referral.STATUSES
    ]
    return render(
        request,
        "labs/worklist.html",
        {"referrals": referrals, "status": status, "tabs": tabs},
    )


def _sent_pairs(sent) -> list[tuple[str, str]]:
    """LabRun.sent (client, patient and doctor as the analyser sent them) as label/value rows."""
    pairs: list[tuple[str, str]] = []
    if not isinstance(sent, dict):
        return pairs
    for key, value in sent.items():
        if key == "requisition_number":
            continue  # shown on its own
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if sub_value not in ("", None):
                    pairs.append((f"{key} {sub_key}".replace("_", " "), str(sub_value)))
        elif value not in ("", None, [], {}):
            pairs.append((str(key).replace("_", " "), str(value)))
    return pairs


def waiting_runs(department) -> list[LabRun]:
    """Runs waiting for a person in this department's queue, with their results."""
    runs = list(
        LabRun.objects.filter(departments=department, review_state__in=REVIEW_STATES)
        .select_related("referral__consultation__patient__client")
        .prefetch_related(
            Prefetch(
                "results",
                queryset=Result.objects.filter(is_current=True).order_by("id"),
                to_attr="current_results",
            )
        )
        .order_by("created_at", "id")[:100]
    )
    # A run waiting for review is attached to nothing; the referral its requisition number
    # names (if any) is what a person confirms it against. One query for all of them.
    numbers = {int(run.requisition_number) for run in runs if run.requisition_number.isdigit()}
    named = {
        referral.number: referral
        for referral in Referral.objects.filter(
            number__in=numbers, department=department
        ).select_related("consultation__patient__client")
    }
    for run in runs:
        run.sent_pairs = _sent_pairs(run.sent)
        run.named_referral = (
            named.get(int(run.requisition_number)) if run.requisition_number.isdigit() else None
        )
        for result in run.current_results:
            _decorate(result)
    return runs


@access.department_required(WORK_REVIEW_QUEUE)
def review_queue(request):
    return render(
        request,
        "labs/review_queue.html",
        {
            "runs": waiting_runs(request.department),
            "review_actions": _review_actions_available(),
        },
    )


def _review_actions_available() -> bool:
    return all(
        hasattr(services, name) for name in ("run_attach", "run_identity_confirm", "run_dismiss")
    )


def _run_for(request, run_id: int) -> LabRun:
    run = LabRun.objects.filter(pk=run_id, departments=request.department).first()
    if run is None:
        raise Http404("Not found.")
    return run


def _review_done(request, *, error: str = "", notice: str = ""):
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect("labs:review_queue")


def _review_call(request, name: str, **kwargs):
    service = getattr(services, name, None)
    if service is None:
        raise ValidationError("This action is not available yet.")
    return service(**kwargs)


@access.department_required(WORK_REVIEW_QUEUE)
def referral_search(request):
    """Referrals of this department to attach a run to, by number or patient/client name."""
    q = (request.GET.get("q") or request.GET.get("referral") or "").strip()
    referrals: list[Referral] = []
    if q:
        queryset = Referral.objects.filter(department=request.department)
        if q.isdigit():
            queryset = queryset.filter(number__startswith=q)
        else:
            for term in q.split()[:4]:
                queryset = queryset.filter(
                    Q(consultation__patient__name__icontains=term)
                    | Q(consultation__patient__client__last_name__icontains=term)
                    | Q(consultation__patient__client__first_name__icontains=term)
                )
        referrals = list(
            queryset.select_related("consultation__patient__client").order_by("-created_at")[:10]
        )
    return render(
        request,
        "labs/_referral_choices.html",
        {"referrals": referrals, "q": q, "run_id": request.GET.get("run", "")},
    )


@access.department_required(WORK_REVIEW_QUEUE)
def run_attach(request, run_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    run = _run_for(request, run_id)
    member_ids = access.member_department_ids(request)
    choice = request.POST.get("choice", "").strip()
    typed = request.POST.get("referral", "").strip()
    referral = None
    # A choice from the search list sends the referral's id; typed digits are its number.
    if choice.isdigit():
        referral = Referral.objects.filter(pk=int(choice), department_id__in=member_ids).first()
    elif typed.isdigit():
        referral = Referral.objects.filter(number=int(typed), department_id__in=member_ids).first()
    if referral is None or not run.departments.filter(pk=referral.department_id).exists():
        return _review_done(
            request, error="Choose a referral of a department this run was posted for."
        )
    try:
        _review_call(
            request,
            "run_attach",
            run=run,
            referral=referral,
            attached_by=request.user,
            # The person vouches that a differently named animal is this referral's.
            identity_confirmed=request.POST.get("identity_confirmed") == "on",
        )
    except ValidationError as error:
        return _review_done(request, error=_error_text(error))
    return _review_done(
        request, notice=f"Run {run.diagnostic_set_id} attached to referral {referral.number}."
    )


@access.department_required(WORK_REVIEW_QUEUE)
def run_confirm(request, run_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    run = _run_for(request, run_id)
    try:
        _review_call(request, "run_identity_confirm", run=run, confirmed_by=request.user)
    except ValidationError as error:
        return _review_done(request, error=_error_text(error))
    return _review_done(request, notice=f"Run {run.diagnostic_set_id} confirmed and attached.")


@access.department_required(WORK_REVIEW_QUEUE)
def run_dismiss(request, run_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    run = _run_for(request, run_id)
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _review_done(request, error="Give a reason to dismiss a run.")
    try:
        _review_call(
            request,
            "run_dismiss",
            run=run,
            reason=form.cleaned_data["reason"],
            dismissed_by=request.user,
        )
    except ValidationError as error:
        return _review_done(request, error=_error_text(error))
    return _review_done(request, notice=f"Run {run.diagnostic_set_id} dismissed.")


# --- The item list (admins) ---------------------------------------------------------------


def _item_list_or_404(request):
    item_list = item_list_for_department(request.department)
    if item_list is None:
        raise Http404("This department has no item list.")
    return item_list


def _departments_sharing(item_list) -> list:
    from pims.models import Department

    return list(Department.objects.filter(item_list=item_list).order_by("id"))


@access.department_required(EDIT_ITEM_LIST)
def item_list(request):
    item_list = _item_list_or_404(request)
    q = request.GET.get("q", "").strip()
    items = Item.objects.filter(item_list=item_list, kind=Item.KIND_LAB).select_related("vat_rate")
    if q:
        items = items.filter(Q(name__icontains=q) | Q(code__icontains=q))
    # Items the analyser created wait for a name and a price: first, highlighted.
    items = list(items.order_by("-auto_created", "-active", "name", "id"))
    panels = list(
        LabPanel.objects.filter(item_list=item_list)
        .prefetch_related(Prefetch("items", queryset=Item.objects.order_by("name", "id")))
        .order_by("name", "id")
    )
    return render(
        request,
        "labs/item_list.html",
        {
            "item_list": item_list,
            "items": items,
            "panels": panels,
            "q": q,
            "auto_count": sum(1 for item in items if item.auto_created),
            "sharing": _departments_sharing(item_list),
        },
    )


@access.department_required(EDIT_ITEM_LIST)
def item_edit(request, item_id: int | None = None):
    item_list = _item_list_or_404(request)
    item = None
    if item_id is not None:
        item = get_object_or_404(Item, pk=item_id, item_list=item_list, kind=Item.KIND_LAB)
    form = LabItemForm(request.POST or None, instance=item, item_list=item_list)
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        fields["yields"] = fields.pop("yields_text", [])
        try:
            if item is None:
                saved = billing_services.item_create(
                    item_list=item_list,
                    kind=Item.KIND_LAB,
                    **fields,
                    created_by=request.user,
                    department=request.department,
                )
            else:
                saved = billing_services.item_update(
                    item=item,
                    **fields,
                    updated_by=request.user,
                    department=request.department,
                )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{saved.name} saved.")
            return redirect(reverse("labs:item_list") + f"#item-{saved.pk}")
    return render(
        request, "labs/item_form.html", {"form": form, "item": item, "item_list": item_list}
    )


@access.department_required(EDIT_ITEM_LIST)
def panel_edit(request, panel_id: int | None = None):
    item_list = _item_list_or_404(request)
    panel = None
    if panel_id is not None:
        panel = get_object_or_404(LabPanel, pk=panel_id, item_list=item_list)
    form = LabPanelForm(request.POST or None, instance=panel, item_list=item_list)
    if request.method == "POST" and form.is_valid():
        try:
            if panel is None:
                saved = services.panel_create(
                    item_list=item_list,
                    **form.cleaned_data,
                    created_by=request.user,
                    department=request.department,
                )
            else:
                saved = services.panel_update(
                    panel=panel,
                    **form.cleaned_data,
                    updated_by=request.user,
                    department=request.department,
                )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Panel {saved.name} saved.")
            return redirect(reverse("labs:item_list") + "#panels")
    return render(
        request,
        "labs/panel_form.html",
        {"form": form, "panel": panel, "item_list": item_list},
    )
