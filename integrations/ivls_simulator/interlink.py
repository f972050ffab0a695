"""InterLink files as the simulator reads and writes them.

Reads ``work_request_20`` files (the PIMS's requests) and writes ``result_20``
files shaped like the ones IDEXX InterLink writes to ``Results\\Data``, plus a
tiny one-page PDF standing in for the run's report.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import random
import re
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as DET

from .catalog import CatalogItem, analytes_by_instrument, load_catalog

_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")

SUB_TYPES = (
    "New_Results",
    "Replace_Previous_Results",
    "Restore_Previous_Results",
    "Resend_of_Previous_Results",
)


def declared_encoding(data: bytes) -> str:
    """The encoding named in the XML declaration, UTF-8 when there is none."""
    match = _DECLARED_ENCODING.match(data.lstrip(codecs.BOM_UTF8)[:200])
    return match.group(1).decode("ascii") if match else "UTF-8"


def parse_xml(data: bytes | str) -> Element:
    """Parse InterLink XML safely whatever its declared encoding.

    expat (and so defusedxml) refuses multi-byte encodings such as Big5, so the
    bytes are decoded by their declaration first and the declaration dropped.
    """
    if isinstance(data, bytes):
        text = data.lstrip(codecs.BOM_UTF8).decode(declared_encoding(data))
    else:
        text = data
    return DET.fromstring(_DECLARATION.sub("", text, count=1))


def _text(element: Element | None, path: str) -> str:
    if element is None:
        return ""
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def _attr(element: Element | None, name: str) -> str:
    return (element.get(name) or "").strip() if element is not None else ""


@dataclass(frozen=True)
class WorkRequest:
    """The parts of a ``work_request_20`` file that come back in results."""

    message_id: str = ""
    sub_type: str = "New"
    from_application_id: str = ""
    requisition_number: str = ""
    client_id: str = ""
    client_first_name: str = ""
    client_last_name: str = ""
    patient_id: str = ""
    species: str = ""
    gender: str = ""
    patient_name: str = ""
    breed: str = ""
    birth_dt: str = ""
    weight: str = "0"
    weight_uom: str = "kgs"
    doctor_first_name: str = ""
    doctor_last_name: str = ""
    service_codes: tuple[str, ...] = field(default_factory=tuple)


def parse_work_request(data: bytes | str) -> WorkRequest:
    """Read a work request file; raises ValueError when it is not one."""
    try:
        root = parse_xml(data)
    except Exception as exc:  # defusedxml raises several unrelated types
        raise ValueError(f"not readable XML: {exc}") from exc
    if root.tag != "message" or root.get("message_type") != "Work_Request":
        raise ValueError("not an InterLink Work_Request message")
    request = root.find("body/work_request")
    if request is None:
        raise ValueError("no work_request element")
    client = request.find("client")
    patient = request.find("patient")
    weight_el = patient.find("patient_weight") if patient is not None else None
    return WorkRequest(
        message_id=_attr(root, "message_id"),
        sub_type=_attr(root, "message_sub_type") or "New",
        from_application_id=_text(root, "header/from_application_id"),
        requisition_number=_attr(request, "requisition_number"),
        client_id=_attr(client, "client_id"),
        client_first_name=_text(client, "first_name"),
        client_last_name=_text(client, "last_name"),
        patient_id=_attr(patient, "patient_id"),
        species=_attr(patient, "patient_species"),
        gender=_attr(patient, "patient_gender"),
        patient_name=_text(patient, "patient_name"),
        breed=_text(patient, "patient_breed"),
        birth_dt=_text(patient, "patient_birth_dt"),
        weight=_text(weight_el, "weight") or "0",
        weight_uom=_attr(weight_el, "patient_weight_uom") or "kgs",
        doctor_first_name=_text(request, "doctor/first_name"),
        doctor_last_name=_text(request, "doctor/last_name"),
        service_codes=tuple(
            (el.text or "").strip()
            for el in request.findall("service_add/service_cd")
            if (el.text or "").strip()
        ),
    )


def ivls_run_request(
    *, codes: tuple[str, ...] = ("SNAPFF",), species: str = "FELINE", name: str = "Walk-in"
) -> WorkRequest:
    """A run started on the IVLS itself: no requisition number, client or patient id."""
    return WorkRequest(species=species, patient_name=name, service_codes=codes)


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssayValue:
    code: str
    unit: str
    value: str
    low: str
    high: str
    critical_low: str
    critical_high: str
    qualifier: str = "="


def _places(*texts: str) -> int:
    return max((len(t.split(".", 1)[1]) if "." in t else 0 for t in texts if t), default=0)


def _fmt(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _numeric_value(item: CatalogItem, low: str, high: str, rng: random.Random) -> str:
    """Mostly inside the range; about one value in five below or above it."""
    lo, hi = Decimal(low), Decimal(high)
    places = _places(low, high)
    step = Decimal(1).scaleb(-places)
    span = hi - lo
    crit_lo = Decimal(item.critical_low) if item.critical_low else None
    crit_hi = Decimal(item.critical_high) if item.critical_high else None
    roll = rng.random()
    if roll < 0.10 and lo > 0:
        value = lo - span * Decimal(str(rng.uniform(0.05, 0.35)))
        value = min(value, lo - step)
        floor = max(crit_lo if crit_lo is not None else Decimal(0), Decimal(0))
        value = max(value, floor, Decimal(0))
        if value >= lo:  # nowhere to go below: report it high instead
            value = hi + step
    elif roll < 0.20:
        value = hi + span * Decimal(str(rng.uniform(0.05, 0.6)))
        value = max(value, hi + step)
        if crit_hi is not None and value > crit_hi:
            value = hi + step
    else:
        value = lo + span * Decimal(str(rng.uniform(0.1, 0.9)))
    return _fmt(value, places)


_RATIOS = {"ALB/GLOB": ("ALB", "GLOB", 1), "BUN/CREA": ("BUN", "CREA", 0), "Na/K": ("Na", "K", 0)}


def assay_values(analytes: list[CatalogItem], species: str, rng: random.Random) -> list[AssayValue]:
    """One value per analyte; ratios are computed from the values they divide."""
    values: list[AssayValue] = []
    numbers: dict[str, Decimal] = {}
    for item in analytes:
        low, high = item.reference_range(species)
        if item.is_text:
            text = "Positive" if rng.random() < 0.2 else "Negative"
        elif low and high:
            text = _numeric_value(item, low, high, rng)
        elif item.code in _RATIOS:
            top, bottom, places = _RATIOS[item.code]
            if numbers.get(bottom):
                text = _fmt(numbers[top] / numbers[bottom], places) if top in numbers else "0"
            else:
                text = _fmt(Decimal(str(rng.uniform(0.5, 30))), places)
        else:
            text = _fmt(Decimal(str(rng.uniform(1, 100))), 1)
        try:
            numbers[item.code] = Decimal(text)
        except ArithmeticError:
            pass
        values.append(
            AssayValue(
                code=item.code,
                unit=item.unit,
                value=text,
                low=low,
                high=high,
                critical_low=item.critical_low,
                critical_high=item.critical_high,
            )
        )
    return values


def _corrected(values: list[AssayValue], rng: random.Random) -> list[AssayValue]:
    """The same values with one changed, as a corrected run would have."""
    numeric = [i for i, v in enumerate(values) if _is_number(v.value)]
    candidates = numeric or list(range(len(values)))
    if not candidates:
        return values
    index = rng.choice(candidates)
    old = values[index]
    if _is_number(old.value):
        places = _places(old.value)
        bump = max(Decimal(old.value) * Decimal("0.1"), Decimal(1).scaleb(-places))
        new = _fmt(Decimal(old.value) + bump, places)
    else:
        new = "Negative" if old.value == "Positive" else "Positive"
    changed = list(values)
    changed[index] = dataclasses.replace(old, value=new)
    return changed


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return bool(text)


# --- writing ------------------------------------------------------------------------------


def interlink_time(moment: dt.datetime, *, millis: bool = True) -> str:
    """``MM/DD/YYYY hh:mm:ss.fff AM`` (wall time, no zone) as InterLink writes it."""
    hour = moment.hour % 12 or 12
    ampm = "AM" if moment.hour < 12 else "PM"
    frac = f".{moment.microsecond // 1000:03d}" if millis else ""
    return f"{moment:%m/%d/%Y} {hour:02d}:{moment:%M:%S}{frac} {ampm}"


def local_now() -> dt.datetime:
    """The clinic's wall-clock time, naive, as InterLink files carry it."""
    return dt.datetime.now(dt.UTC).astimezone().replace(tzinfo=None)


def _wall(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return local_now()
    if moment.tzinfo is not None:
        return moment.astimezone().replace(tzinfo=None)
    return moment


def declared_name(encoding: str) -> str:
    """The name to put in the XML declaration for a Python codec name."""
    name = codecs.lookup(encoding).name
    return {"utf-8": "UTF-8", "big5": "Big5", "big5hkscs": "Big5-HKSCS"}.get(name, encoding)


def _a(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _t(value: str) -> str:
    return escape(value)


def request_rng(request: WorkRequest, seed: int | str, *extra: str) -> random.Random:
    key = "|".join(
        [str(seed), request.message_id, request.requisition_number, request.patient_name, *extra]
    )
    return random.Random(key)  # noqa: S311 - simulated lab values, not security


def make_diagnostic_set_id(request: WorkRequest, *, seed: int | str, now: dt.datetime) -> str:
    """``YYYYMMDD_hhmmss_N``: when the set was started on the IVLS, and a number.

    The number is the work request's id when there is one, so ids never repeat
    between requests; IVLS-started runs get a random one.
    """
    rng = request_rng(request, seed, "set")
    started = now - dt.timedelta(seconds=rng.randint(40, 400))
    suffix = request.message_id if request.message_id.isdigit() else str(rng.randint(100, 99999))
    return f"{started:%Y%m%d_%H%M%S}_{suffix}"


def make_result_xml(
    request: WorkRequest | bytes | str,
    *,
    seed: int | str,
    encoding: str = "UTF-8",
    sub_type: str = "New_Results",
    now: dt.datetime | None = None,
    instrument: str | None = None,
    diagnostic_set_id: str | None = None,
    message_id: int | str = 1,
    from_application_id: str | None = None,
) -> bytes:
    """A ``result_20`` file for one instrument's share of a work request.

    ``instrument`` defaults to that of the first ordered code the catalogue
    knows. Values depend only on ``seed``, the request and the instrument, so
    a ``Replace_Previous_Results`` made with the same arguments differs from
    the ``New_Results`` in exactly one value. ``now`` is the run time (the
    clinic's wall time; default: now).
    """
    if not isinstance(request, WorkRequest):
        request = parse_work_request(request)
    if sub_type not in SUB_TYPES:
        raise ValueError(f"unknown message_sub_type {sub_type!r}")
    catalog = load_catalog()
    groups, _unknown = analytes_by_instrument(request.service_codes, catalog)
    if instrument is None:
        if not groups:
            raise ValueError("the request orders no code the catalogue knows")
        instrument = next(iter(groups))
    analytes = groups.get(instrument, [])
    run_at = _wall(now)
    rng = request_rng(request, seed, instrument)
    values = assay_values(analytes, request.species, rng)
    sent_at = run_at + dt.timedelta(milliseconds=rng.randint(300, 2500))
    if sub_type != "New_Results":
        sent_at += dt.timedelta(seconds=rng.randint(5, 30))
    if sub_type == "Replace_Previous_Results":
        values = _corrected(values, request_rng(request, seed, instrument, "correction"))
    if diagnostic_set_id is None:
        diagnostic_set_id = make_diagnostic_set_id(request, seed=seed, now=run_at)
    if from_application_id is None:
        from_application_id = str(uuid.UUID(int=random.Random(f"app|{seed}").getrandbits(128)))  # noqa: S311

    gender = f' patient_gender="{_a(request.gender)}"' if request.gender else ""
    lines = [
        f'<?xml version="1.0" encoding="{declared_name(encoding)}"?>',
        '<!DOCTYPE message SYSTEM "result_20.dtd">',
        f'<message message_id="{_a(str(message_id))}" message_dt="{interlink_time(sent_at)}"'
        f' message_type="Result" message_sub_type="{sub_type}" message_dtd_version_number="2.0">',
        "  <header>",
        f"    <from_application_id>{_t(from_application_id)}</from_application_id>",
        f"    <to_application_id>{_t(request.from_application_id)}</to_application_id>",
        "  </header>",
        "  <body>",
        f'    <result requisition_number="{_a(request.requisition_number)}"'
        f' diagnostic_set_id="{_a(diagnostic_set_id)}" instrument="{_a(instrument)}">',
        f"      <run_dt>{interlink_time(run_at)}</run_dt>",
        f'      <client client_id="{_a(request.client_id)}">',
        f"        <first_name>{_t(request.client_first_name)}</first_name>",
        f"        <last_name>{_t(request.client_last_name)}</last_name>",
        "      </client>",
        f'      <patient patient_id="{_a(request.patient_id)}"'
        f' patient_species="{_a(request.species)}"{gender}>',
        f"        <patient_name>{_t(request.patient_name)}</patient_name>",
        f"        <patient_breed>{_t(request.breed)}</patient_breed>",
        f"        <patient_birth_dt>{_t(request.birth_dt)}</patient_birth_dt>",
        f'        <patient_weight patient_weight_uom="{_a(request.weight_uom)}">',
        f"          <weight>{_t(request.weight)}</weight>",
        "        </patient_weight>",
        "      </patient>",
        "      <doctor>",
        f"        <first_name>{_t(request.doctor_first_name)}</first_name>",
        f"        <last_name>{_t(request.doctor_last_name)}</last_name>",
        "      </doctor>",
        "      <results>",
    ]
    for value in values:
        lines += [
            f'        <assay_result assay_name="{_a(value.code)}">',
            f"          <result_value_uom_cd>{_t(value.unit)}</result_value_uom_cd>",
            f"          <result_value>{_t(value.value)}</result_value>",
            "          <assay_reference_range>",
            f"            <critical_low>{_t(value.critical_low)}</critical_low>",
            f"            <low>{_t(value.low)}</low>",
            f"            <high>{_t(value.high)}</high>",
            f"            <critical_high>{_t(value.critical_high)}</critical_high>",
            "          </assay_reference_range>",
            f"          <result_qualifier>{_t(value.qualifier)}</result_qualifier>",
            "        </assay_result>",
        ]
    lines += ["      </results>", "    </result>", "  </body>", "</message>"]
    # Characters the legacy code page lacks become character references, which
    # any XML reader turns back into the same text.
    return "\n".join(lines).encode(encoding, errors="xmlcharrefreplace")


# --- the report ---------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    ascii_text = text.encode("ascii", errors="replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF showing ``lines`` in Helvetica (non-ASCII shown as ``?``)."""
    shown = " T* ".join(f"({_pdf_string(line)}) Tj" for line in lines) or "() Tj"
    content = f"BT /F1 12 Tf 16 TL 56 780 Td {shown} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)
