"""The printed lab report of a referral."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404

from labs.models import Referral
from labs.report import referral_report_pdf
from pims import access
from pims.permissions import VIEW_CLINICAL


@login_required
def referral_report(request, referral_id: int):
    referral = get_object_or_404(
        Referral.objects.only("id", "number", "department_id"), pk=referral_id
    )
    # Another department's referral is a 404: its existence is not revealed.
    access.department_object_enter(request, referral.department_id, VIEW_CLINICAL)
    response = HttpResponse(referral_report_pdf(referral), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="lab-report-{referral.number}.pdf"'
    return response
