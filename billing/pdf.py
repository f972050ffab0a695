"""The printed invoice (and credit note)."""

from billing.models import BillingSettings, Invoice
from billing.money import total
from billing.selectors import (
    invoice_balance,
    invoice_lines,
    invoice_preview_amounts,
    vat_breakdown,
)
from pims.pdf import render_pdf


def hides_zero_price_lines(invoice: Invoice) -> bool:
    return (
        BillingSettings.objects.filter(department_id=invoice.department_id)
        .values_list("hide_zero_price_lines", flat=True)
        .first()
        or False
    )


def invoice_document_context(invoice: Invoice) -> dict:
    """What the printed invoice shows. Zero-price lines stay in every total; the
    department's print setting only leaves them off the printed list."""
    invoice = Invoice.objects.select_related("department", "client", "credits").get(pk=invoice.pk)
    lines = invoice_lines(invoice)
    amounts = invoice_preview_amounts(invoice, lines)
    rows = list(zip(lines, amounts, strict=True))
    hide_zero = hides_zero_price_lines(invoice)
    printed = [(line, amount) for line, amount in rows if not (hide_zero and line.unit_price == 0)]
    consultations = list(
        invoice.consultations.select_related("patient").order_by("started_at", "id")
    )
    balance = invoice_balance(invoice) if not invoice.is_draft else None
    return {
        "invoice": invoice,
        "department": invoice.department,
        "client": invoice.client,
        "recipient": invoice.recipient if not invoice.is_draft else None,
        "rows": printed,
        "totals": total(amounts),
        "vat_rows": vat_breakdown(lines, amounts),
        "consultations": consultations,
        "patients": sorted({c.patient.name for c in consultations}),
        "balance": balance,
        "hidden_zero_lines": len(rows) - len(printed),
    }


def invoice_pdf(invoice: Invoice) -> bytes:
    context = invoice_document_context(invoice)
    return render_pdf("pdf/invoice.html", context, time_zone=context["department"].zone)
