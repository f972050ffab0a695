"""Billing pages: invoices, payments, refunds, payment plans and reports.

Everything here belongs to one department and is shown only to its members: list pages use
the department the user works in; an object of another department answers 404.
"""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from billing import reports, selectors, services
from billing.forms import (
    CreditForm,
    InvoiceLineAddForm,
    InvoiceLineForm,
    PaymentForm,
    PaymentPlanForm,
    RefundForm,
)
from billing.models import Invoice, InvoiceLine, Payment, PaymentPlan, Refund
from billing.money import ZERO, total
from billing.pdf import invoice_pdf
from patients.models import Consultation
from pims import access
from pims.permissions import MANAGE_BILLING

PAGE_SIZE = 50


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _enter(request, department_id: int):
    """Open a department's object: 404 unless the user is a member there."""
    return access.department_object_enter(request, department_id, MANAGE_BILLING)


def _invoice_for(request, invoice_id: int) -> Invoice:
    invoice = get_object_or_404(
        Invoice.objects.select_related("department", "client", "credits"), pk=invoice_id
    )
    _enter(request, invoice.department_id)
    return invoice


def _detail(invoice: Invoice):
    return redirect("billing:invoice_detail", invoice_id=invoice.pk)


# --- Invoices ----------------------------------------------------------------------------------


@require_GET
@access.department_required(MANAGE_BILLING)
def invoice_list(request):
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()[:100]
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    qs = selectors.invoices_for_department(request.department, status=status, query=query)
    invoices = list(qs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1])
    has_next = len(invoices) > PAGE_SIZE
    invoices = invoices[:PAGE_SIZE]
    rows = [(invoice, selectors.balance_of(invoice)) for invoice in invoices]
    return render(
        request,
        "billing/invoice_list.html",
        {
            "rows": rows,
            "status": status,
            "query": query,
            "page": page,
            "has_next": has_next,
            "to_invoice": selectors.consultations_to_invoice(request.department).count(),
        },
    )


@require_GET
@access.department_required(MANAGE_BILLING)
def invoice_new(request):
    """Visits with charges not yet invoiced: one button each makes the draft."""
    consultations = list(selectors.consultations_to_invoice(request.department)[:200])
    return render(request, "billing/invoice_new.html", {"consultations": consultations})


def _back_or(request, fallback: str) -> str:
    target = request.POST.get("next") or request.headers.get("referer", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_POST
@login_required
def invoice_create_for_consultation(request, consultation_id: int):
    """The consultation page's "Invoice" button: a draft from the visit's open charges, or
    the visit's existing draft when everything is already on it."""
    consultation = get_object_or_404(
        Consultation.objects.select_related("patient__client", "department"), pk=consultation_id
    )
    _enter(request, consultation.department_id)
    try:
        invoice = services.invoice_create_for_consultation(
            consultation=consultation, created_by=request.user
        )
    except ValidationError as error:
        draft = selectors.draft_for_consultation(consultation)
        if draft is not None:
            messages.info(request, "Everything on this visit is already on this draft.")
            return _detail(draft)
        messages.error(request, _error_text(error))
        return redirect(_back_or(request, reverse("billing:invoice_new")))
    messages.success(request, "Draft invoice created: check it, then finalise.")
    return _detail(invoice)


def _detail_context(request, invoice: Invoice, **forms) -> dict:
    lines = selectors.invoice_lines(invoice)
    amounts = selectors.invoice_preview_amounts(invoice, lines)
    context = {
        "invoice": invoice,
        "department": invoice.department,
        "client": invoice.client,
        "rows": list(zip(lines, amounts, strict=True)),
        "totals": total(amounts),
        "vat_rows": selectors.vat_breakdown(lines, amounts),
        "consultations": list(
            invoice.consultations.select_related("patient").order_by("started_at", "id")
        ),
        "credit_notes": list(invoice.credit_notes.all()),
        "balance": None,
        "today": timezone.localdate(),
    }
    if invoice.is_draft:
        context["line_forms"] = {
            line.pk: forms.get(f"line_{line.pk}")
            or InvoiceLineForm(
                initial={
                    "description": line.description,
                    "quantity": line.quantity.normalize(),
                    "unit_price": line.unit_price,
                    "vat_rate": line.vat_rate.normalize(),
                },
                prefix=f"line{line.pk}",
                form_id=f"line-form-{line.pk}",
            )
            for line in lines
        }
        context["rows"] = [
            (line, amount, context["line_forms"][line.pk]) for line, amount in context["rows"]
        ]
        context["add_form"] = forms.get("add_form") or InvoiceLineAddForm(
            item_list_id=invoice.department.item_list_id
        )
        context["more_consultations"] = list(
            selectors.consultations_to_invoice(invoice.department).filter(
                patient__client=invoice.client
            )[:20]
        )
        return context
    balance = selectors.invoice_balance(invoice)
    payments = list(
        invoice.payments.select_related("recorded_by").prefetch_related(
            Prefetch("refunds", queryset=Refund.objects.order_by("at", "id"))
        )
    )
    for payment in payments:
        payment.refundable = payment.amount - sum((r.amount for r in payment.refunds.all()), ZERO)
    plan = (
        PaymentPlan.objects.filter(invoice=invoice, cancelled_at__isnull=True)
        .prefetch_related("instalments")
        .first()
    )
    context.update(
        balance=balance,
        payments=payments,
        payment_form=forms.get("payment_form")
        or PaymentForm(initial={"amount": max(balance.balance, ZERO) or None}),
        plan=plan,
        schedule=selectors.payment_plan_schedule(plan, today=context["today"], balance=balance)
        if plan
        else [],
    )
    return context


@require_GET
@login_required
def invoice_detail(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    return render(request, "billing/invoice_detail.html", _detail_context(request, invoice))


@require_GET
@login_required
def invoice_pdf_view(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    name = invoice.number or f"draft-{invoice.pk}"
    kind = "credit-note" if invoice.is_credit_note else "invoice"
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{kind}-{name}.pdf"'
    return response


def _post_login(view):
    """POST only, signed in (the pages' own forms)."""
    return require_POST(login_required(view))


@_post_login
def invoice_line_update(request, line_id: int):
    line = get_object_or_404(InvoiceLine.objects.select_related("invoice"), pk=line_id)
    invoice = _invoice_for(request, line.invoice_id)
    form = InvoiceLineForm(request.POST, prefix=f"line{line.pk}", form_id=f"line-form-{line.pk}")
    if form.is_valid():
        try:
            services.invoice_line_update(line=line, updated_by=request.user, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, "Line saved.")
            return _detail(invoice)
    if invoice.is_draft:
        context = _detail_context(request, invoice, **{f"line_{line.pk}": form})
        return render(request, "billing/invoice_detail.html", context, status=400)
    return _detail(invoice)


@_post_login
def invoice_line_remove(request, line_id: int):
    line = get_object_or_404(InvoiceLine.objects.select_related("invoice"), pk=line_id)
    invoice = _invoice_for(request, line.invoice_id)
    try:
        services.invoice_line_remove(line=line, removed_by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, f"Removed “{line.description}”.")
    return _detail(invoice)


@_post_login
def invoice_line_add(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    form = InvoiceLineAddForm(request.POST, item_list_id=invoice.department.item_list_id)
    if form.is_valid():
        try:
            services.invoice_line_add(
                invoice=invoice,
                item=form.cleaned_data["item"],
                quantity=form.cleaned_data["quantity"],
                added_by=request.user,
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        return _detail(invoice)
    if not invoice.is_draft:
        return _detail(invoice)
    context = _detail_context(request, invoice, add_form=form)
    return render(request, "billing/invoice_detail.html", context, status=400)


@_post_login
def invoice_consultation_add(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    consultation = get_object_or_404(
        Consultation.objects.select_related("patient"),
        pk=request.POST.get("consultation") or 0,
        department_id=invoice.department_id,
    )
    try:
        services.invoice_consultation_add(
            invoice=invoice, consultation=consultation, added_by=request.user
        )
    except ValidationError as error:
        messages.error(request, _error_text(error))
    return _detail(invoice)


@_post_login
def invoice_finalise(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    try:
        invoice = services.invoice_finalise(invoice=invoice, finalised_by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, f"Invoice {invoice.number} issued.")
    return _detail(invoice)


@_post_login
def invoice_discard(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    try:
        services.invoice_discard(invoice=invoice, discarded_by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return _detail(invoice)
    messages.success(request, "Draft discarded; its charges are waiting to be invoiced.")
    return redirect("billing:invoice_list")


@login_required
def invoice_credit(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    form = CreditForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            note = services.invoice_credit(
                invoice=invoice,
                reason=form.cleaned_data["reason"],
                release_lines=form.cleaned_data["release_lines"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Credit note {note.number} issued.")
            return _detail(note)
    return render(
        request,
        "billing/invoice_credit.html",
        {"invoice": invoice, "form": form, "balance": selectors.invoice_balance(invoice)},
        status=400 if form.errors else 200,
    )


# --- Payments, refunds and plans -------------------------------------------------------------


@_post_login
def payment_record(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    form = PaymentForm(request.POST)
    if form.is_valid():
        try:
            payment = services.payment_record(
                invoice=invoice,
                amount=form.cleaned_data["amount"],
                method=form.cleaned_data["method"],
                paid_at=form.cleaned_data["paid_at"],
                reference=form.cleaned_data["reference"],
                recorded_by=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Payment of {payment.amount} recorded.")
            return _detail(invoice)
    if invoice.is_draft:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return _detail(invoice)
    context = _detail_context(request, invoice, payment_form=form)
    return render(request, "billing/invoice_detail.html", context, status=400)


@login_required
def refund_record(request, payment_id: int):
    payment = get_object_or_404(
        Payment.objects.select_related("invoice__department", "invoice__client"), pk=payment_id
    )
    _enter(request, payment.invoice.department_id)
    refunded = sum((r.amount for r in payment.refunds.all()), ZERO)
    form = RefundForm(request.POST or None, initial={"amount": payment.amount - refunded})
    if request.method == "POST" and form.is_valid():
        try:
            refund = services.refund_record(
                payment=payment,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                recorded_by=request.user,
            )
        except ValidationError as error:
            form.add_error("amount", error)
        else:
            messages.success(request, f"Refund of {refund.amount} recorded.")
            return _detail(payment.invoice)
    return render(
        request,
        "billing/refund_form.html",
        {
            "payment": payment,
            "invoice": payment.invoice,
            "refunded": refunded,
            "refundable": payment.amount - refunded,
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@login_required
def payment_plan_create(request, invoice_id: int):
    invoice = _invoice_for(request, invoice_id)
    balance = selectors.invoice_balance(invoice)
    today = timezone.localdate()
    form = PaymentPlanForm(
        request.POST or None, initial={"first_due": today + dt.timedelta(days=14)}
    )
    preview = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            instalments = services.instalments_even(
                amount=balance.balance,
                count=data["count"],
                first_due=data["first_due"],
                months_between=data["months_between"],
            )
            preview = instalments
            if "confirm" in request.POST:
                services.payment_plan_create(
                    invoice=invoice,
                    instalments=instalments,
                    note=data["note"],
                    created_by=request.user,
                )
                messages.success(request, f"Payment plan of {len(instalments)} instalments set.")
                return _detail(invoice)
        except ValidationError as error:
            form.add_error(None, error)
    return render(
        request,
        "billing/payment_plan_form.html",
        {"invoice": invoice, "balance": balance, "form": form, "preview": preview},
        status=400 if form.errors else 200,
    )


@_post_login
def payment_plan_cancel(request, plan_id: int):
    plan = get_object_or_404(PaymentPlan.objects.select_related("invoice"), pk=plan_id)
    _enter(request, plan.invoice.department_id)
    try:
        services.payment_plan_cancel(plan=plan, cancelled_by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, "Payment plan cancelled.")
    return _detail(plan.invoice)


@require_GET
@access.department_required(MANAGE_BILLING)
def payment_plans(request):
    today = timezone.localdate()
    plans = list(
        PaymentPlan.objects.filter(
            invoice__department=request.department, cancelled_at__isnull=True
        )
        .select_related("invoice__client")
        .prefetch_related("instalments")
        .order_by("-created_at")[:200]
    )
    overdue = {
        row["plan"].pk: row
        for row in selectors.payment_plans_overdue(request.department, today=today)
    }
    return render(
        request,
        "billing/payment_plans.html",
        {"plans": [(plan, overdue.get(plan.pk)) for plan in plans], "today": today},
    )


# --- Reports -----------------------------------------------------------------------------------
# The report of lab work not yet invoiced is labs' (labs.views_reports): the page below links
# to it by URL name, so billing never imports labs.


def _report(kind: str, department, period: reports.Period):
    if kind == "revenue":
        return reports.revenue_report(department, period)
    if kind == "payments":
        return reports.payments_report(department, period)
    if kind == "outstanding":
        return reports.outstanding_report(department, as_of=period.end)
    raise Http404("No such report.")


@require_GET
@access.department_required(MANAGE_BILLING)
def report(request, kind: str = "revenue"):
    if kind not in reports.REPORTS:
        raise Http404("No such report.")
    form, period = reports.report_period(request.GET, today=timezone.localdate())
    return render(
        request,
        "billing/reports.html",
        {
            "kind": kind,
            "reports": reports.REPORTS,
            "title": reports.REPORTS[kind],
            "form": form,
            "period": period,
            "report": _report(kind, request.department, period),
            "query": request.GET.urlencode(),
            "csv_url": reverse("billing:report_csv", args=[kind]),
        },
    )


@require_GET
@access.department_required(MANAGE_BILLING)
def report_csv(request, kind: str):
    if kind not in reports.REPORTS:
        raise Http404("No such report.")
    _, period = reports.report_period(request.GET, today=timezone.localdate())
    data = reports.report_csv(_report(kind, request.department, period), request.department)
    response = HttpResponse(data, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{kind}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"'
    )
    return response
