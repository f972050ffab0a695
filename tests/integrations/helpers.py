"""Helpers for the plug-in API and matching tests: connections, referrals, result files."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from billing.selectors import item_by_code
from integrations.ivls.services import connection_configure
from labs.services import referral_create
from tests.factories import (
    ConsultationFactory,
    DepartmentFactory,
    department_item_list,
    ivls_item,
)

PASSWORD = "correct-horse-battery-42"
API = "/api/ivls/v1/"


def connected_department(*, password: str = PASSWORD, enabled: bool = True, **kwargs):
    department = DepartmentFactory(**kwargs)
    connection_configure(department=department, enabled=True, password=password)
    if not enabled:
        connection_configure(department=department, enabled=False)
    return department


def auth(units, password: str = PASSWORD, **extra) -> dict:
    if not isinstance(units, str):
        units = ",".join(str(getattr(u, "pk", u)) for u in units)
    token = base64.b64encode(f"{units}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}", **extra}


def ivls_referral(department, codes=("CHEM",), *, consultation=None, items=None, **kw):
    """A queued referral with one IVLS analysis per code (and its New work request)."""
    consultation = consultation or ConsultationFactory(department=department, **kw)
    item_list = department_item_list(department)
    items = items or [
        item_by_code(item_list=item_list, code=code) or ivls_item(department, code)
        for code in codes
    ]
    return referral_create(consultation=consultation, items=items)


@dataclass(frozen=True)
class Assay:
    code: str
    value: str
    unit: str = ""
    low: str = ""
    high: str = ""
    critical_low: str = ""
    critical_high: str = ""
    qualifier: str = "="


def result_xml(
    *,
    requisition: str = "",
    diagnostic_set_id: str = "20261122_140311_17",
    instrument: str = "Catalyst_One",
    sub_type: str = "New_Results",
    message_type: str = "Result",
    run_dt: str = "11/22/2026 02:03:11.120 PM",
    client_id: str = "",
    patient_id: str = "",
    patient_name: str = "",
    assays=(Assay("GLU", "117", "mg/dL", "74", "143", "15", "700"),),
    notes=(),
    encoding: str = "UTF-8",
) -> bytes:
    """A result_20 file as InterLink writes it (the tests' own, not the product's)."""
    assay_xml = "\n".join(
        f"""        <assay_result assay_name={quoteattr(a.code)}>
          <result_value_uom_cd>{escape(a.unit)}</result_value_uom_cd>
          <result_value>{escape(a.value)}</result_value>
          <assay_reference_range>
            <critical_low>{a.critical_low}</critical_low><low>{a.low}</low>
            <high>{a.high}</high><critical_high>{a.critical_high}</critical_high>
          </assay_reference_range>
          <result_qualifier>{escape(a.qualifier)}</result_qualifier>
        </assay_result>"""
        for a in assays
    )
    notes_xml = ""
    if notes:
        notes_xml = (
            "<instrument_notes>"
            + "".join(f"<instrument_note>{escape(n)}</instrument_note>" for n in notes)
            + "</instrument_notes>"
        )
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
<!DOCTYPE message SYSTEM "result_20.dtd">
<message message_id="1" message_dt="11/22/2026 02:05:00.000 PM" message_type="{message_type}"
         message_sub_type="{sub_type}" message_dtd_version_number="2.0">
  <header>
    <from_application_id>ivls</from_application_id><to_application_id>pims</to_application_id>
  </header>
  <body>
    <result requisition_number={quoteattr(requisition)}
            diagnostic_set_id={quoteattr(diagnostic_set_id)}
            instrument={quoteattr(instrument)}>
      <run_dt>{run_dt}</run_dt>
      <client client_id={quoteattr(client_id)}>
        <first_name>Maria</first_name><last_name>Virtanen</last_name>
      </client>
      <patient patient_id={quoteattr(patient_id)}
               patient_species="CANINE" patient_gender="FEMALE_SPAYED">
        <patient_name>{escape(patient_name)}</patient_name>
      </patient>
      <doctor><first_name>Anna</first_name><last_name>Korhonen</last_name></doctor>
      <results>
{assay_xml}
      </results>
      {notes_xml}
    </result>
  </body>
</message>
"""
    return text.encode(encoding)


def referral_xml(referral, **kwargs) -> bytes:
    """A result file for this referral's patient, as the IVLS sends it back."""
    patient = referral.consultation.patient
    kwargs.setdefault("requisition", str(referral.number))
    kwargs.setdefault("client_id", str(patient.client_id))
    kwargs.setdefault("patient_id", str(patient.pk))
    kwargs.setdefault("patient_name", patient.name)
    return result_xml(**kwargs)


MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def pdf(tag: str = "") -> bytes:
    return MINIMAL_PDF + f"% {tag}\n".encode()
