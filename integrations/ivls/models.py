from django.db import models
from django.db.models import Q
from django.utils import timezone

from labs.models import LabRun, Referral
from pims.models import Department


class IVLSConnection(models.Model):
    department = models.OneToOneField(
        Department, primary_key=True, on_delete=models.CASCADE, related_name="ivls_connection"
    )
    enabled = models.BooleanField(default=False)
    # HMAC-SHA256 of the password keyed by IVLS_PASSWORD_KEY; the password is never stored.
    password_digest = models.CharField(max_length=64, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    last_heard_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "IVLS connection"

    def __str__(self) -> str:
        return f"IVLS connection of unit {self.department_id}"


class WorkRequest(models.Model):
    ACTION_NEW = "New"
    ACTION_CANCEL = "Cancel"
    ACTIONS = [(ACTION_NEW, "New"), (ACTION_CANCEL, "Cancel")]

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="work_requests")
    action = models.CharField(max_length=6, choices=ACTIONS)
    xml = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The poll reads only pending requests, oldest first, per department.
            models.Index(
                fields=["department", "id"],
                condition=Q(delivered_at__isnull=True),
                name="workrequest_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} work request {self.pk} for {self.referral_id}"

    @property
    def file_name(self) -> str:
        return f"WR-{self.pk}.xml"


class InboundResultFile(models.Model):
    STATUS_RECEIVED = "received"
    STATUS_PROCESSING = "processing"
    STATUS_MATCHED = "matched"
    STATUS_UNMATCHED = "unmatched"
    STATUS_NEEDS_REVIEW = "needs_review"
    STATUS_DUPLICATE = "duplicate"
    STATUS_REJECTED = "rejected"
    STATUS_FAILED = "failed"
    STATUS_IGNORED = "ignored"
    STATUSES = [
        (STATUS_RECEIVED, "received"),
        (STATUS_PROCESSING, "processing"),
        (STATUS_MATCHED, "matched"),
        (STATUS_UNMATCHED, "unmatched"),
        (STATUS_NEEDS_REVIEW, "needs review"),
        (STATUS_DUPLICATE, "duplicate"),
        (STATUS_REJECTED, "rejected"),
        (STATUS_FAILED, "failed"),
        (STATUS_IGNORED, "ignored"),
    ]

    sha256 = models.CharField(max_length=64, db_index=True)
    file_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    unit_key = models.CharField(max_length=200)
    departments = models.ManyToManyField(
        Department, through="InboundResultFileDepartment", related_name="+"
    )
    status = models.CharField(max_length=15, choices=STATUSES, default=STATUS_RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    message_type = models.CharField(max_length=50, blank=True)
    requisition_number = models.CharField(max_length=40, blank=True)
    diagnostic_set_id = models.CharField(max_length=100, blank=True)
    run = models.ForeignKey(
        LabRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="result_files"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="received"),
                name="inboundfile_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"Result file {self.pk} ({self.status})"


class InboundResultContent(models.Model):
    """The raw bytes, in a side table so that listing files never loads them."""

    result_file = models.OneToOneField(
        InboundResultFile, primary_key=True, on_delete=models.CASCADE, related_name="content"
    )
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"Content of result file {self.result_file_id}"


class InboundResultFileDepartment(models.Model):
    """One row per department a file was posted for; the same bytes are stored once each."""

    result_file = models.ForeignKey(InboundResultFile, on_delete=models.CASCADE)
    department = models.ForeignKey(Department, on_delete=models.PROTECT)
    sha256 = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "sha256"], name="inboundfile_unique_per_department"
            )
        ]

    def __str__(self) -> str:
        return f"File {self.result_file_id} for unit {self.department_id}"


class ExchangeLogEntry(models.Model):
    """One plug-in call, per department. Empty polls are only counted (PollCounter)."""

    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    method = models.CharField(max_length=8)
    endpoint = models.CharField(max_length=200)
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=200, blank=True)
    unit_list = models.CharField(max_length=200, blank=True)
    requisition_number = models.CharField(max_length=40, blank=True)
    bytes = models.PositiveIntegerField(default=0)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["department", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.endpoint} {self.status_code}"


class PollCounter(models.Model):
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    empty_polls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["department", "day"], name="pollcounter_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.empty_polls} empty polls from unit {self.department_id} on {self.day}"


class AuthFailure(models.Model):
    """A 401 from one client address for one unit, for the sliding-window throttle."""

    client_address = models.CharField(max_length=64)
    unit = models.CharField(max_length=40)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["client_address", "unit", "at"])]

    def __str__(self) -> str:
        return f"401 for unit {self.unit} from {self.client_address} at {self.at}"
