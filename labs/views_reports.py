"""The report of lab work done but not yet invoiced: one of the billing reports by purpose
(billing's reports page links to it), served by labs because it reads lab results."""

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.reports import REPORTS, report_csv, report_period
from labs.reports import uninvoiced_lab_report
from pims import access
from pims.permissions import MANAGE_BILLING

KIND = "uninvoiced-lab"
TITLE = "Lab work not invoiced"


@require_GET
@access.department_required(MANAGE_BILLING)
def uninvoiced_report(request):
    form, period = report_period(request.GET, today=timezone.localdate())
    return render(
        request,
        "labs/uninvoiced_report.html",
        {
            "kind": KIND,
            "reports": REPORTS,
            "title": TITLE,
            "form": form,
            "period": period,
            "report": uninvoiced_lab_report(request.department, period),
            "query": request.GET.urlencode(),
            "csv_url": reverse("labs:uninvoiced_report_csv"),
        },
    )


@require_GET
@access.department_required(MANAGE_BILLING)
def uninvoiced_report_csv(request):
    _, period = report_period(request.GET, today=timezone.localdate())
    data = report_csv(uninvoiced_lab_report(request.department, period), request.department)
    response = HttpResponse(data, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{KIND}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"'
    )
    return response
