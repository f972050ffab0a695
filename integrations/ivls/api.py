"""The plug-in API (ICP-API.md): work requests, result files, PDF reports, status.

Thin views: parse, call one service or selector, answer JSON. Every answer is JSON, errors
included (``{"error": "..."}``), whatever the client's Accept header says; a database that
is down answers 503 so the plug-in keeps its file and retries.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from integrations.ivls import selectors, serializers
from integrations.ivls.authentication import IVLSBasicAuthentication, PluginPrincipal
from integrations.ivls.exchange import empty_poll_count, exchange_log_write, heard_from
from integrations.ivls.models import InboundResultFile, WorkRequest
from integrations.ivls.services import (
    OUTCOME_DUPLICATE,
    OUTCOME_IGNORED,
    OUTCOME_REJECTED,
    report_receive,
    result_file_receive,
    work_request_acknowledge,
)
from labs.models import LabRun
from pims.models import Department

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")
PDF_TYPE = "application/pdf"
MULTIPART = "multipart/form-data"
# Room for the multipart boundaries and headers around the parts.
MULTIPART_OVERHEAD = MIB


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is larger than this server accepts."


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The upload cannot be read."


def _text(detail) -> str:
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_text(value)}" for key, value in detail.items())
    if isinstance(detail, list | tuple):
        return " ".join(_text(item) for item in detail)
    return str(detail)


def plugin_exception_handler(exc, context):
    """Every error as ``{"error": ...}``: DRF's, Django's, the database's and our own."""
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unavailable on the plug-in API: %s", exc)
        response = Response(
            {
                "error": "The server's database is not available right now. Keep the file "
                "and try again in a minute; nothing was stored."
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "30"
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, exceptions.APIException):
        response = drf_exception_handler(exc, context)
        if response is not None:
            response.data = {"error": _text(exc.detail)}
            return response
    logger.exception("Unexpected error on the plug-in API", exc_info=exc)
    return Response(
        {"error": "The server failed on this request; it has been logged. Try again later."},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Anything else under /api/ivls/: a JSON 404, never an HTML page or a redirect."""
    path = request.path
    hint = "" if path.endswith("/") else " The API's URLs end with a slash."
    return JsonResponse({"error": f"There is no plug-in API endpoint at {path}.{hint}"}, status=404)


def _is_api(request) -> bool:
    return request.path.startswith("/api/ivls/")


def handler400(request, exception=None):
    """Django's 400 (e.g. a Host it does not serve), as JSON on the plug-in API."""
    if _is_api(request):
        return JsonResponse({"error": "Bad request: the server cannot use it."}, status=400)
    return defaults.bad_request(request, exception)


def handler500(request):
    """A failure outside the API views (middleware), as JSON on the plug-in API."""
    if _is_api(request):
        return JsonResponse(
            {"error": "The server failed on this request; it has been logged."}, status=500
        )
    return defaults.server_error(request)


# --------------------------------------------------------------------------------------
# Plumbing shared by the endpoints
# --------------------------------------------------------------------------------------


class JSONOnly(BaseContentNegotiation):
    """The plug-in API answers JSON whatever the Accept header asks for."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class _BytesParser(BaseParser):
    """The body as bytes, refusing more than the view's limit even if Content-Length lied."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = parser_context["view"].body_limit
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(parser_context["view"].too_large_message)
        return data


class XMLParser(_BytesParser):
    media_type = "application/xml"


class TextXMLParser(_BytesParser):
    media_type = "text/xml"


class PDFParser(_BytesParser):
    media_type = PDF_TYPE


class IsPlugin(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, PluginPrincipal)


def _iso(value: datetime, *, milliseconds: bool = True) -> str:
    utc = value.astimezone(UTC)
    if milliseconds:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_name(request, fallback: str = "") -> str:
    # Header values travel as Latin-1; plug-ins percent-encode anything else.
    name = request.META.get("HTTP_X_FILE_NAME", "") or fallback
    return urllib.parse.unquote(name).strip()[:255]


def _media_type(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def _mib(size: int) -> str:
    return f"{size / MIB:g} MiB"


class PluginView(APIView):
    authentication_classes = [IVLSBasicAuthentication]
    permission_classes = [IsPlugin]
    renderer_classes = [JSONRenderer]
    parser_classes: list = []
    throttle_classes: list = []
    content_negotiation_class = JSONOnly
    body_limit = 0
    too_large_message = ""

    def get_exception_handler(self):
        return plugin_exception_handler

    def initial(self, request, *args, **kwargs):
        self.log_outcome = ""
        self.log_requisition = ""
        self.empty_poll = False
        self.heard_now: list[int] = []
        super().initial(request, *args, **kwargs)
        self.heard_now = heard_from(request._request.ivls_auth.connections)

    @property
    def department_ids(self) -> list[int]:
        return self.request.user.department_ids

    def check_content_length(self, limit: int, message: str) -> None:
        """Refuse before reading: a body announced above the limit is never read or stored."""
        try:
            length = int(self.request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(message)

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        # Rendered here (Django would skip it later) so the log can say how many bytes went.
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
        try:
            self._log(self.request, response)
        except Exception:  # noqa: BLE001 - bookkeeping never changes an answer
            logger.warning("Could not log a plug-in call", exc_info=True)
        return response

    def _log(self, request, response) -> None:
        auth = getattr(request._request, "ivls_auth", None)
        if auth is None or response.status_code == 503:
            return  # nothing known about the caller, or the database is gone
        if getattr(self, "empty_poll", False) and auth.authenticated:
            empty_poll_count(list(auth.units), flush_now=self.heard_now)
            return
        if auth.authenticated:
            department_ids = list(auth.units)
        else:
            known = set(Department.objects.filter(pk__in=auth.units).values_list("pk", flat=True))
            department_ids = [unit if unit in known else None for unit in auth.units]
        outcome = getattr(self, "log_outcome", "")
        if response.status_code >= 400:
            detail = response.data.get("error", "") if isinstance(response.data, dict) else ""
            outcome = auth.failure or outcome or detail
        # Bytes received for uploads, bytes sent otherwise.
        size = int(request.META.get("CONTENT_LENGTH") or 0) if request.method == "POST" else 0
        size = size or len(response.content)
        exchange_log_write(
            department_ids=department_ids,
            method=request.method,
            endpoint=request.path,
            status_code=response.status_code,
            outcome=outcome,
            unit_list=auth.unit_list,
            requisition_number=getattr(self, "log_requisition", ""),
            size=size,
            client_address=_valid_ip(auth.client_address),
        )


def _valid_ip(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return ""


ERRORS = {
    401: OpenApiResponse(serializers.ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(serializers.ErrorSerializer, description="A connection is disabled."),
    429: OpenApiResponse(serializers.ErrorSerializer, description="Too many failed logins."),
    503: OpenApiResponse(serializers.ErrorSerializer, description="Database unavailable."),
}
FILE_NAME_HEADER = OpenApiParameter(
    "X-File-Name",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The file's name in InterLink's folder.",
)


# --------------------------------------------------------------------------------------
# Work requests
# --------------------------------------------------------------------------------------


def _limit(raw) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return 100
    return min(500, max(1, value))


class WorkRequestListView(PluginView):
    @extend_schema(
        operation_id="work_requests_list",
        summary="Pending work requests, oldest first",
        parameters=[
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description="At most this many (1..500, default 100)."
            )
        ],
        responses={200: serializers.WorkRequestListSerializer, **ERRORS},
    )
    def get(self, request):
        limit = _limit(request.query_params.get("limit"))
        pending = selectors.work_requests_pending(department_ids=self.department_ids, limit=limit)
        items = [
            {
                "id": wr.pk,
                "unit_id": wr.department_id,
                "requisition_number": str(wr.referral.number),
                "action": wr.action,
                "created_at": _iso(wr.created_at),
                "file_name": wr.file_name,
                "xml": wr.xml,
            }
            for wr in pending[:limit]
        ]
        if items:
            self.log_outcome = f"{len(items)} work request(s)"
            self.log_requisition = ",".join(item["requisition_number"] for item in items)[:40]
        else:
            self.empty_poll = True
        return Response({"work_requests": items, "has_more": len(pending) > limit})


class WorkRequestAckView(PluginView):
    @extend_schema(
        operation_id="work_request_ack",
        summary="Mark a work request delivered (idempotent)",
        request=None,
        responses={
            200: serializers.WorkRequestAckSerializer,
            404: OpenApiResponse(serializers.ErrorSerializer, description="Not one of yours."),
            **ERRORS,
        },
    )
    def post(self, request, work_request_id: int):
        try:
            work_request = work_request_acknowledge(
                work_request_id=work_request_id, department_ids=self.department_ids
            )
        except WorkRequest.DoesNotExist:
            raise exceptions.NotFound(
                f"There is no work request {work_request_id} for these units."
            ) from None
        self.log_outcome = f"{work_request.action} delivered"
        self.log_requisition = str(work_request.referral.number)
        return Response({"id": work_request.pk, "status": "delivered"})


# --------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------


def _report_outcome(departments, diagnostic_set_id: str, upload) -> dict:
    content = upload.read()
    if not diagnostic_set_id:
        return {
            "status": "rejected",
            "error": "The result file names no run, so its report cannot be attached.",
        }
    if not _is_pdf(content):
        return {"status": "rejected", "error": "The report is not a PDF."}
    document = report_receive(
        departments=departments,
        content=content,
        diagnostic_set_id=diagnostic_set_id,
        file_name=upload.name or f"{diagnostic_set_id}.pdf",
    )
    return {"status": document.outcome, "id": document.pk}


def _is_pdf(content: bytes) -> bool:
    # The PDF header may follow a little junk; readers look in the first kilobyte.
    return b"%PDF-" in content[:1024]


class ResultFileView(PluginView):
    @property
    def too_large_message(self) -> str:
        return (
            f"The result file is larger than the {_mib(settings.IVLS_MAX_XML_BYTES)} limit; "
            "nothing was stored."
        )

    def get_parsers(self):
        return [XMLParser(), TextXMLParser(), MultiPartParser()]

    @property
    def body_limit(self) -> int:
        return settings.IVLS_MAX_XML_BYTES

    @extend_schema(
        operation_id="results_create",
        summary="Post one result file",
        description=(
            "The body is the file's bytes, untouched (`application/xml` or `text/xml`, "
            "optional `X-File-Name`), or `multipart/form-data` with the XML in `file` and "
            "optionally the run's PDF in `report`. 201 accepted; 200 duplicate (the same "
            "bytes again, or a resend of the run's current results) or ignored (not a Result "
            "message); 422 not an InterLink result (the file is kept as rejected); 413 too "
            "large (nothing stored)."
        ),
        request={
            "application/xml": OpenApiTypes.BINARY,
            "text/xml": OpenApiTypes.BINARY,
            MULTIPART: serializers.ResultUploadSerializer,
        },
        parameters=[FILE_NAME_HEADER],
        responses={
            201: serializers.ResultPostSerializer,
            200: serializers.ResultPostSerializer,
            413: OpenApiResponse(serializers.ErrorSerializer, description="Too large."),
            415: OpenApiResponse(serializers.ErrorSerializer, description="Wrong content type."),
            422: OpenApiResponse(
                serializers.ResultRejectedSerializer, description="Not an InterLink result."
            ),
            **ERRORS,
        },
    )
    def post(self, request):
        media_type = _media_type(request)
        xml_limit = settings.IVLS_MAX_XML_BYTES
        report = None
        if media_type in XML_TYPES:
            self.check_content_length(xml_limit, self.too_large_message)
            content = request.data if isinstance(request.data, bytes) else b""
            file_name = _file_name(request)
        elif media_type == MULTIPART:
            self.check_content_length(
                xml_limit + settings.IVLS_MAX_PDF_BYTES + MULTIPART_OVERHEAD,
                "The upload is larger than the result file and report limits together "
                f"({_mib(xml_limit)} and {_mib(settings.IVLS_MAX_PDF_BYTES)}).",
            )
            upload = request.FILES.get("file")
            report = request.FILES.get("report")
            if upload is None:
                raise Unprocessable(
                    "The multipart form has no 'file' part: send the result XML in a part "
                    "named 'file'."
                )
            if upload.size > xml_limit:
                raise PayloadTooLarge(self.too_large_message)
            if report is not None and report.size > settings.IVLS_MAX_PDF_BYTES:
                raise PayloadTooLarge(
                    f"The report is larger than the {_mib(settings.IVLS_MAX_PDF_BYTES)} limit "
                    "for PDFs; nothing was stored."
                )
            content = upload.read()
            file_name = _file_name(request, upload.name or "")
        else:
            raise exceptions.UnsupportedMediaType(
                media_type or "(none)",
                detail=(
                    f"Send the result file as application/xml (or text/xml) or as "
                    f"multipart/form-data, not {media_type or 'without a Content-Type'}."
                ),
            )
        departments = self.department_ids
        result_file = result_file_receive(
            departments=departments, content=content, file_name=file_name
        )
        outcome = result_file.outcome
        if outcome == OUTCOME_DUPLICATE and result_file.status == InboundResultFile.STATUS_REJECTED:
            outcome = OUTCOME_REJECTED
        elif (
            outcome == OUTCOME_DUPLICATE and result_file.status == InboundResultFile.STATUS_IGNORED
        ):
            outcome = OUTCOME_IGNORED
        self.log_outcome = f"{outcome} (file {result_file.pk})"
        self.log_requisition = result_file.requisition_number
        if outcome == OUTCOME_REJECTED:
            return Response(
                {"error": result_file.error, "id": result_file.pk},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        body = {"status": outcome, "id": result_file.pk}
        if report is not None:
            body["report"] = _report_outcome(departments, result_file.diagnostic_set_id, report)
        code = status.HTTP_201_CREATED if outcome == "accepted" else status.HTTP_200_OK
        return Response(body, status=code)


def _file_status(result_file: InboundResultFile) -> tuple[str, str]:
    """The status the plug-in sees, and a detail for its log and for support."""
    status_ = result_file.status
    run = result_file.run
    if status_ in (InboundResultFile.STATUS_RECEIVED, InboundResultFile.STATUS_PROCESSING):
        detail = "Stored; waiting to be matched."
        if result_file.attempts and result_file.error:
            detail = f"Attempt {result_file.attempts} failed ({result_file.error}); retrying."
        return InboundResultFile.STATUS_RECEIVED, detail[:1000]
    if (
        status_
        in (
            InboundResultFile.STATUS_MATCHED,
            InboundResultFile.STATUS_UNMATCHED,
            InboundResultFile.STATUS_NEEDS_REVIEW,
        )
        and run is not None
    ):
        # What became of it since: a person may have attached or dismissed the run.
        if run.review_state == LabRun.STATE_DISMISSED:
            return status_, f"Dismissed in the review queue: {run.review_reason}"
        status_ = run.review_state
        if status_ == LabRun.STATE_MATCHED and run.referral is not None:
            return status_, f"Attached to referral {run.referral.number}."
        return status_, run.review_reason
    if status_ == InboundResultFile.STATUS_DUPLICATE:
        return status_, "The run already has these results; nothing changed."
    return status_, result_file.error


class ResultFileDetailView(PluginView):
    @extend_schema(
        operation_id="results_retrieve",
        summary="What became of a result file",
        responses={
            200: serializers.ResultFileStatusSerializer,
            404: OpenApiResponse(serializers.ErrorSerializer, description="Not one of yours."),
            **ERRORS,
        },
    )
    def get(self, request, file_id: int):
        result_file = selectors.result_file_for_units(
            file_id=file_id, department_ids=self.department_ids
        )
        if result_file is None:
            raise exceptions.NotFound(f"There is no result file {file_id} for these units.")
        file_status, detail = _file_status(result_file)
        self.log_outcome = file_status
        self.log_requisition = result_file.requisition_number
        return Response(
            {
                "id": result_file.pk,
                "status": file_status,
                "requisition_number": result_file.requisition_number,
                "diagnostic_set_id": result_file.diagnostic_set_id,
                "received_at": _iso(result_file.received_at),
                "detail": detail or "",
            }
        )


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def _run_id_from_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base.lower().endswith(".pdf"):
        base = base[:-4]
    return base.strip()


class ReportView(PluginView):
    @property
    def too_large_message(self) -> str:
        return (
            f"The report is larger than the {_mib(settings.IVLS_MAX_PDF_BYTES)} limit for "
            "PDFs; nothing was stored."
        )

    def get_parsers(self):
        return [PDFParser(), MultiPartParser()]

    @property
    def body_limit(self) -> int:
        return settings.IVLS_MAX_PDF_BYTES

    @extend_schema(
        operation_id="reports_create",
        summary="Post a run's PDF report",
        description=(
            "`application/pdf` with `X-File-Name: <diagnostic_set_id>.pdf`, or multipart "
            "field `file` (named the same way). Attached to the referral of the run with that "
            "diagnostic_set_id among the authenticated departments; kept and attached later "
            "when the run's result file has not arrived yet."
        ),
        request={PDF_TYPE: OpenApiTypes.BINARY, MULTIPART: serializers.ReportUploadSerializer},
        parameters=[FILE_NAME_HEADER],
        responses={
            201: serializers.ReportPostSerializer,
            200: serializers.ReportPostSerializer,
            413: OpenApiResponse(serializers.ErrorSerializer, description="Over 25 MiB."),
            415: OpenApiResponse(serializers.ErrorSerializer, description="Wrong content type."),
            422: OpenApiResponse(serializers.ErrorSerializer, description="Not a PDF."),
            **ERRORS,
        },
    )
    def post(self, request):
        media_type = _media_type(request)
        pdf_limit = settings.IVLS_MAX_PDF_BYTES
        if media_type == PDF_TYPE:
            self.check_content_length(pdf_limit, self.too_large_message)
            content = request.data if isinstance(request.data, bytes) else b""
            file_name = _file_name(request)
        elif media_type == MULTIPART:
            self.check_content_length(pdf_limit + MULTIPART_OVERHEAD, self.too_large_message)
            upload = request.FILES.get("file")
            if upload is None:
                raise Unprocessable(
                    "The multipart form has no 'file' part: send the PDF in a part named 'file'."
                )
            if upload.size > pdf_limit:
                raise PayloadTooLarge(self.too_large_message)
            content = upload.read()
            file_name = _file_name(request, upload.name or "")
        else:
            raise exceptions.UnsupportedMediaType(
                media_type or "(none)",
                detail=(
                    "Send the report as application/pdf (with X-File-Name) or as "
                    f"multipart/form-data, not {media_type or 'without a Content-Type'}."
                ),
            )
        diagnostic_set_id = _run_id_from_name(file_name)
        if not diagnostic_set_id:
            raise Unprocessable(
                "Name the report after its run: X-File-Name: <diagnostic_set_id>.pdf, as "
                "InterLink names it in Results\\Reports."
            )
        if not _is_pdf(content):
            raise Unprocessable(
                f"{file_name} is not a PDF (a PDF starts with %PDF-); nothing was stored."
            )
        document = report_receive(
            departments=self.department_ids,
            content=content,
            diagnostic_set_id=diagnostic_set_id,
            file_name=file_name,
        )
        self.log_outcome = f"report {document.outcome} (document {document.pk})"
        code = status.HTTP_201_CREATED if document.outcome == "accepted" else status.HTTP_200_OK
        return Response(
            {
                "status": document.outcome,
                "id": document.pk,
                "diagnostic_set_id": document.diagnostic_set_id,
                "attached": document.run_id is not None,
            },
            status=code,
        )


# --------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------


class StatusView(PluginView):
    @extend_schema(
        operation_id="status_retrieve",
        summary="Heartbeat and connectivity check",
        responses={200: serializers.StatusSerializer, **ERRORS},
    )
    def get(self, request):
        pending = selectors.work_requests_pending_count(department_ids=self.department_ids)
        self.log_outcome = f"{pending} pending"
        return Response(
            {
                "units": self.department_ids,
                "server_time": _iso(timezone.now(), milliseconds=False),
                "pending_work_requests": pending,
            }
        )
