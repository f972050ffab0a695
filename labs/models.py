from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.models import ConsultationLine, Item, ItemList
from patients.models import Consultation
from pims.models import Department


class LabPanel(models.Model):
    """A named group of lab items; adding a panel adds its items."""

    item_list = models.ForeignKey(ItemList, on_delete=models.PROTECT, related_name="panels")
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=40, blank=True)
    items = models.ManyToManyField(Item, related_name="panels")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ReferralNumberCounter(models.Model):
    """The referral number counter on databases without sequences (the SQLite demo)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_number = models.BigIntegerField(default=100000)

    def __str__(self) -> str:
        return f"last referral number {self.last_number}"


class Referral(models.Model):
    STATUS_OPEN = "open"
    STATUS_QUEUED = "queued"
    STATUS_SENT = "sent"
    STATUS_PARTIAL = "partial"
    STATUS_COMPLETE = "complete"
    STATUS_CANCELLED = "cancelled"
    STATUSES = [
        (STATUS_OPEN, "open"),
        (STATUS_QUEUED, "queued"),
        (STATUS_SENT, "sent"),
        (STATUS_PARTIAL, "partial"),
        (STATUS_COMPLETE, "complete"),
        (STATUS_CANCELLED, "cancelled"),
    ]

    number = models.BigIntegerField(unique=True)
    consultation = models.ForeignKey(
        Consultation, on_delete=models.PROTECT, related_name="referrals"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="referrals")
    # Assigned only by labs.state.referral_transition.
    status = models.CharField(max_length=10, choices=STATUSES)
    sends_to_ivls = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    cancel_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["department", "status"])]

    def __str__(self) -> str:
        return f"Referral {self.number}"


class ReferralLine(models.Model):
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="lines")
    consultation_line = models.OneToOneField(
        ConsultationLine, on_delete=models.PROTECT, related_name="referral_line"
    )
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    added_by_matching = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.referral.number}: {self.item.name}"


class LabRun(models.Model):
    """One analyser run as received, matched to a referral or waiting for a person."""

    STATE_MATCHED = "matched"
    STATE_UNMATCHED = "unmatched"
    STATE_NEEDS_REVIEW = "needs_review"
    STATE_DISMISSED = "dismissed"
    STATES = [
        (STATE_MATCHED, "matched"),
        (STATE_UNMATCHED, "unmatched"),
        (STATE_NEEDS_REVIEW, "needs review"),
        (STATE_DISMISSED, "dismissed"),
    ]

    # The departments the run was posted for, as their sorted unit list ("1,2").
    unit_key = models.CharField(max_length=200)
    departments = models.ManyToManyField(Department, related_name="lab_runs")
    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    instrument = models.CharField(max_length=100)
    diagnostic_set_id = models.CharField(max_length=100)
    run_time = models.DateTimeField(null=True, blank=True)
    run_time_text = models.CharField(max_length=50, blank=True)
    requisition_number = models.CharField(max_length=40, blank=True)
    # Client, patient and doctor exactly as the analyser sent them, for the review queue.
    sent = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    review_state = models.CharField(max_length=15, choices=STATES)
    review_reason = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    current_revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit_key", "instrument", "diagnostic_set_id"], name="labrun_unique_run"
            )
        ]
        indexes = [models.Index(fields=["review_state"])]

    def __str__(self) -> str:
        return f"{self.instrument} {self.diagnostic_set_id}"


class Result(models.Model):
    FLAG_LL = "LL"
    FLAG_L = "L"
    FLAG_N = "N"
    FLAG_H = "H"
    FLAG_HH = "HH"

    run = models.ForeignKey(
        LabRun, null=True, blank=True, on_delete=models.CASCADE, related_name="results"
    )
    revision = models.PositiveIntegerField(default=1)
    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="results"
    )
    referral_line = models.ForeignKey(
        ReferralLine, null=True, blank=True, on_delete=models.PROTECT, related_name="results"
    )
    code = models.CharField(max_length=40)
    value_text = models.CharField(max_length=500)
    value_number = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    unit = models.CharField(max_length=30, blank=True)
    low = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    high = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    critical_low = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    critical_high = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    qualifier = models.CharField(max_length=5, blank=True)
    flag = models.CharField(max_length=2, blank=True)
    # False for the revisions a corrected run has superseded: they stay as history.
    is_current = models.BooleanField(default=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "revision", "code"], name="result_unique_code_in_revision"
            )
        ]
        indexes = [
            models.Index(fields=["referral", "is_current"]),
            models.Index(fields=["referral_line", "is_current"]),
        ]

    def __str__(self) -> str:
        return f"{self.code} = {self.value_text} {self.unit}".strip()


def result_document_path(instance, filename: str) -> str:
    return f"lab-reports/{timezone.now():%Y/%m}/{instance.sha256[:16]}-{filename}"


class ResultDocument(models.Model):
    """A PDF report from the analyser, attached to the referral of its run."""

    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.PROTECT, related_name="documents"
    )
    run = models.ForeignKey(
        LabRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="documents"
    )
    unit_key = models.CharField(max_length=200)
    departments = models.ManyToManyField(Department, related_name="result_documents")
    pdf = models.FileField(upload_to=result_document_path)
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    diagnostic_set_id = models.CharField(max_length=100, db_index=True)
    size = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["unit_key", "sha256"], name="resultdocument_unique")
        ]

    def __str__(self) -> str:
        return self.file_name or self.diagnostic_set_id
