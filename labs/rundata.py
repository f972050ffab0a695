"""Vendor-neutral description of one analyser run, as a vendor codec hands it to labs.

A vendor module (InterLink XML today, HL7 later) turns bytes into these dataclasses and
calls ``labs.services.run_record``; nothing in labs knows a vendor's wire format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

# How a run relates to earlier runs with the same identity (instrument, run id).
RUN_NEW = "new"
RUN_REPLACE = "replace"  # a corrected run
RUN_RESTORE = "restore"  # the analyser restored an earlier version
RUN_RESEND = "resend"  # the same results sent again
RUN_KINDS = (RUN_NEW, RUN_REPLACE, RUN_RESTORE, RUN_RESEND)


@dataclass(frozen=True)
class AssayData:
    """One analyte result as the analyser reported it."""

    code: str
    value_text: str
    value_number: Decimal | None = None
    unit: str = ""
    low: Decimal | None = None
    high: Decimal | None = None
    critical_low: Decimal | None = None
    critical_high: Decimal | None = None
    qualifier: str = ""


@dataclass(frozen=True)
class RunData:
    """One run: who it was for, when and where it ran, and its results."""

    run_id: str  # InterLink's diagnostic_set_id
    instrument: str
    kind: str = RUN_NEW
    requisition_number: str = ""
    run_time: dt.datetime | None = None  # naive: the clinic's wall time as sent
    run_time_text: str = ""
    client_id: str = ""
    client_first_name: str = ""
    client_last_name: str = ""
    patient_id: str = ""
    patient_name: str = ""
    species: str = ""
    gender: str = ""
    breed: str = ""
    doctor_first_name: str = ""
    doctor_last_name: str = ""
    assays: tuple[AssayData, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)
