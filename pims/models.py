import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. Europe/Helsinki).")


class Department(models.Model):
    """A location of the practice. Its primary key is the Unit ID the IVLS plug-in sends."""

    WEIGHT_KG = "kg"
    WEIGHT_LB = "lb"
    WEIGHT_UNITS = [(WEIGHT_KG, "kg"), (WEIGHT_LB, "lb")]

    name = models.CharField(max_length=200)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA name"
    )
    weight_unit = models.CharField(max_length=2, choices=WEIGHT_UNITS, default=WEIGHT_KG)
    # A lazy reference, not an import: billing sits above pims. Several departments may
    # share one item list.
    item_list = models.ForeignKey(
        "billing.ItemList",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="departments",
    )
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (unit {self.pk})"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(models.Model):
    ROLE_VET = "vet"
    ROLE_NURSE = "nurse"
    ROLE_ADMIN = "admin"
    ROLES = [(ROLE_VET, "Vet"), (ROLE_NURSE, "Nurse"), (ROLE_ADMIN, "Admin")]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.department.name} · {self.role}"


class AuditEvent(models.Model):
    """Append-only record of who did what. Written by services inside their transaction."""

    ACTOR_USER = "user"
    ACTOR_PLUGIN = "plugin"
    ACTOR_SYSTEM = "system"
    ACTOR_PARTNER = "partner"
    ACTOR_TYPES = [
        (ACTOR_USER, "User"),
        (ACTOR_PLUGIN, "Plug-in"),
        (ACTOR_SYSTEM, "System"),
        (ACTOR_PARTNER, "Partner"),
    ]

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_type = models.CharField(max_length=10, choices=ACTOR_TYPES)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=80, db_index=True)
    subject_type = models.CharField(max_length=80, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    # A plain id, not a foreign key: pims sits below patients and must not depend on it.
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.subject_type}:{self.subject_id}"
