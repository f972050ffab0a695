"""Building lab data for the page tests: what matching would leave behind, made directly."""

from decimal import Decimal

from billing.services import consultation_line_add
from labs.flags import result_flag
from labs.models import LabRun, Referral, ReferralLine, Result
from labs.services import referral_create, referral_progress_update
from tests.factories import ivls_item, lab_item

CHEM17 = (
    ("ALB", "Albumin", "g/dL", "3.1", "2.3", "4.0"),
    ("ALKP", "Alkaline phosphatase", "U/L", "250", "23", "212"),
    ("ALT", "Alanine aminotransferase", "U/L", "61", "10", "125"),
    ("AMYL", "Amylase", "U/L", "812", "500", "1500"),
    ("BUN", "Urea nitrogen", "mg/dL", "25", "7", "27"),
    ("Ca", "Calcium", "mg/dL", "10.1", "7.9", "12.0"),
    ("CHOL", "Cholesterol", "mg/dL", "240", "110", "320"),
    ("CREA", "Creatinine", "mg/dL", "1.7", "0.5", "1.8"),
    ("GGT", "Gamma-glutamyltransferase", "U/L", "4", "0", "11"),
    ("GLOB", "Globulin", "g/dL", "3.3", "2.5", "4.5"),
    ("GLU", "Glucose", "mg/dL", "66", "74", "143"),
    ("LIPA", "Lipase", "U/L", "600", "200", "1800"),
    ("PHOS", "Phosphorus", "mg/dL", "4.4", "2.5", "6.8"),
    ("TBIL", "Total bilirubin", "mg/dL", "0.3", "0.0", "0.9"),
    ("TP", "Total protein", "g/dL", "6.4", "5.2", "8.2"),
    ("ALB/GLOB", "Albumin/globulin ratio", "", "0.9", None, None),
    ("BUN/CREA", "BUN/creatinine ratio", "", "15", None, None),
)


def chem17_catalog(department):
    """The Chem 17 ordering item and its 17 analyte items in the department's item list."""
    order = ivls_item(
        department, "CHEM17", yields=[code for code, *_ in CHEM17], name="Catalyst Chem 17"
    )
    analytes = {
        code: lab_item(department, code, name=name, unit=unit) for code, name, unit, *_ in CHEM17
    }
    return order, analytes


def run_attach_directly(referral: Referral, analytes: dict, *, run_id: str = "", values=None):
    """A matched Catalyst run with the Chem 17 results, laid down as matching would."""
    department = referral.department
    run = LabRun.objects.create(
        unit_key=str(department.pk),
        instrument="Catalyst_One",
        diagnostic_set_id=run_id or f"run-{referral.number}",
        referral=referral,
        review_state=LabRun.STATE_MATCHED,
        current_revision=1,
        requisition_number=str(referral.number),
    )
    run.departments.add(department)
    for code, _name, unit, value, low, high in CHEM17:
        value = (values or {}).get(code, value)
        item = analytes[code]
        line = ReferralLine.objects.create(
            referral=referral,
            item=item,
            added_by_matching=True,
            consultation_line=consultation_line_add(
                consultation=referral.consultation, item=item, unit_price=Decimal("0")
            ),
        )
        number = Decimal(value)
        low_d = Decimal(low) if low is not None else None
        high_d = Decimal(high) if high is not None else None
        Result.objects.create(
            run=run,
            revision=1,
            referral=referral,
            referral_line=line,
            code=code,
            value_text=value,
            value_number=number,
            unit=unit,
            low=low_d,
            high=high_d,
            qualifier="=",
            flag=result_flag(number, low=low_d, high=high_d),
        )
    referral_progress_update(referral=referral)
    referral.refresh_from_db()
    return run


def complete_chem17(consultation, order, analytes, user=None, **kw) -> Referral:
    referral = referral_create(consultation=consultation, items=[order], created_by=user)
    run_attach_directly(referral, analytes, **kw)
    return referral
