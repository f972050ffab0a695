import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone

from pims.models import Department

# The species and sex lists are InterLink's: the work request sends them verbatim.
SPECIES = [
    ("CANINE", "Dog"),
    ("FELINE", "Cat"),
    ("EQUINE", "Horse"),
    ("BOVINE", "Cattle"),
    ("OVINE", "Sheep"),
    ("CAPRINE", "Goat"),
    ("PORCINE", "Pig"),
    ("AVIAN", "Bird"),
    ("LAGOMORPH", "Rabbit"),
    ("FERRET", "Ferret"),
    ("RODENT", "Rodent"),
    ("REPTILE", "Reptile"),
    ("OTHER", "Other"),
]
SEXES = [
    ("MALE_INTACT", "Male"),
    ("MALE_NEUTERED", "Male, neutered"),
    ("FEMALE_INTACT", "Female"),
    ("FEMALE_SPAYED", "Female, spayed"),
    ("UNKNOWN", "Unknown"),
]


class Client(models.Model):
    """An animal's owner."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    address = models.CharField(max_length=300, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=50, blank=True, db_index=True)
    email = models.EmailField(blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Patient(models.Model):
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="patients")
    name = models.CharField(max_length=100, db_index=True)
    species = models.CharField(max_length=12, choices=SPECIES, default="CANINE")
    breed = models.CharField(max_length=100, blank=True)
    sex = models.CharField(max_length=15, choices=SEXES, default="UNKNOWN")
    birth_date = models.DateField(null=True, blank=True)
    microchip = models.CharField(max_length=30, blank=True, db_index=True)
    deceased = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_species_display()})"

    def age_on(self, day: dt.date) -> str:
        """Age in words a vet writes: '7 y 3 m', '5 m', '12 d'."""
        if not self.birth_date or day < self.birth_date:
            return ""
        months = (day.year - self.birth_date.year) * 12 + day.month - self.birth_date.month
        if day.day < self.birth_date.day:
            months -= 1
        if months >= 12:
            years, rest = divmod(months, 12)
            return f"{years} y {rest} m" if rest else f"{years} y"
        if months >= 1:
            return f"{months} m"
        return f"{(day - self.birth_date).days} d"


class WeightMeasurement(models.Model):
    UNITS = [("kg", "kg"), ("lb", "lb")]

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="weights")
    value = models.DecimalField(max_digits=7, decimal_places=2)
    unit = models.CharField(max_length=2, choices=UNITS, default="kg")
    measured_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-measured_at", "-id"]
        indexes = [models.Index(fields=["patient", "-measured_at"])]

    def __str__(self) -> str:
        return f"{self.value} {self.unit}"


class Consultation(models.Model):
    STATUS_OPEN = "open"
    STATUS_CLOSED = "closed"
    STATUSES = [(STATUS_OPEN, "Open"), (STATUS_CLOSED, "Closed")]

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consultations")
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="consultations"
    )
    vet = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=STATUSES, default=STATUS_OPEN)
    reason = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["department", "-started_at"])]

    def __str__(self) -> str:
        return f"Consultation {self.pk} · {self.patient.name}"
