from decimal import Decimal

from patients.models import Patient, WeightMeasurement

KG_PER_LB = Decimal("0.45359237")


def latest_weight(patient: Patient) -> WeightMeasurement | None:
    return patient.weights.order_by("-measured_at", "-id").first()


def weight_in(measurement: WeightMeasurement, unit: str) -> Decimal:
    """A weight converted to 'kg' or 'lb'."""
    if measurement.unit == unit:
        return measurement.value
    if unit == "kg":
        return measurement.value * KG_PER_LB
    return measurement.value / KG_PER_LB
