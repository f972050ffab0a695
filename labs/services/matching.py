"""Matching: an analyser run, as a vendor codec hands it over, becomes results on a referral.

Vendor-neutral: InterLink today, HL7 later, both call ``run_record`` with a ``RunData``. The
rules are ICP-API.md's "Matching" section: the referral by number within the posting
departments, an identity check, the line by Code, the department's item by Code, a new
zero-price item; corrected runs become new revisions; whatever cannot be attached safely
waits in the review queue, and attaching from there runs the same code (``run_attach_locked``).

Lock order everywhere: referral, then run (an advisory lock on the run's diagnostic_set_id,
then its row), then lines. Two files for the same referral, or the same file twice, therefore
run one after the other and leave the state that processing each once leaves.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.models import Item
from billing.selectors import item_list_for_department, items_by_codes
from billing.services import consultation_lines_add
from labs import state
from labs.flags import number_from_text, result_flag
from labs.models import LabRun, Referral, ReferralLine, Result, ResultDocument
from labs.rundata import AssayData, RunData
from labs.services.referrals import referral_progress_update
from pims.models import AuditEvent, Department
from pims.services import audit_event_write

logger = logging.getLogger(__name__)

OPEN_STATES = (LabRun.STATE_UNMATCHED, LabRun.STATE_NEEDS_REVIEW)
# DecimalField(max_digits=20, decimal_places=6): anything larger cannot be stored as a number
# (it is kept as text).
_NUMBER_LIMIT = Decimal(10) ** 14


def unit_key_for(departments) -> str:
    """The sorted unit list of the departments, e.g. ``"1,2"``."""
    return ",".join(str(pk) for pk in sorted({_pk(d) for d in departments}))


def _pk(department) -> int:
    return department.pk if isinstance(department, Department) else int(department)


def _departments(departments) -> list[Department]:
    ids = sorted({_pk(d) for d in departments})
    if not ids:
        raise ValueError("A run belongs to at least one department.")
    found = list(Department.objects.filter(pk__in=ids).order_by("pk"))
    if len(found) != len(ids):
        raise ValueError(f"Unknown departments among {ids}.")
    return found


def lock_run_identity(diagnostic_set_id: str) -> None:
    """Serialize everything that creates or attaches a run (or its PDF) with this run id.

    Reports know only the diagnostic_set_id, so the lock is keyed by it alone. SQLite runs
    IMMEDIATE transactions, which already serialize writers.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"labs.run:{diagnostic_set_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# --------------------------------------------------------------------------------------
# What a run's results look like, stored and compared
# --------------------------------------------------------------------------------------


def _storable(number: Decimal | None) -> Decimal | None:
    if number is None or not number.is_finite() or abs(number) >= _NUMBER_LIMIT:
        return None
    return number


@dataclass(frozen=True)
class _Row:
    code: str
    value_text: str
    value_number: Decimal | None
    unit: str
    low: Decimal | None
    high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    qualifier: str

    @property
    def key(self) -> tuple:
        return (
            self.code,
            self.value_text,
            self.unit,
            self.low,
            self.high,
            self.critical_low,
            self.critical_high,
            self.qualifier,
        )


def _rows(assays: tuple[AssayData, ...]) -> list[_Row]:
    """The rows a run stores, one per Code (a Code listed twice keeps its first value)."""
    rows: dict[str, _Row] = {}
    for assay in assays:
        code = assay.code[:40]
        if not code or code in rows:
            continue
        number = assay.value_number
        if number is None:
            number = number_from_text(assay.value_text)
        rows[code] = _Row(
            code=code,
            value_text=assay.value_text[:500],
            value_number=_storable(number),
            unit=assay.unit[:30],
            low=_storable(assay.low),
            high=_storable(assay.high),
            critical_low=_storable(assay.critical_low),
            critical_high=_storable(assay.critical_high),
            qualifier=assay.qualifier[:5],
        )
    return list(rows.values())


def _content(rows: list[_Row]) -> dict[str, tuple]:
    return {row.code: row.key for row in rows}


def _stored_content(lab_run: LabRun) -> dict[str, tuple]:
    return {
        result.code: (
            result.code,
            result.value_text,
            result.unit,
            result.low,
            result.high,
            result.critical_low,
            result.critical_high,
            result.qualifier,
        )
        for result in Result.objects.filter(run=lab_run, is_current=True)
    }


def run_unchanged(*, departments, run: RunData) -> LabRun | None:
    """The stored run with this identity when its current results equal ``run``'s.

    Lets a receiver answer a ``Resend_of_Previous_Results`` as a duplicate at once. A read
    only: ``run_record`` decides again, under its locks.
    """
    lab_run = LabRun.objects.filter(
        unit_key=unit_key_for(departments),
        instrument=run.instrument[:100],
        diagnostic_set_id=run.run_id[:100],
    ).first()
    if lab_run is None or lab_run.current_revision == 0:
        return None
    return lab_run if _stored_content(lab_run) == _content(_rows(run.assays)) else None


# --------------------------------------------------------------------------------------
# The identity check
# --------------------------------------------------------------------------------------


def _name_key(name: str) -> str:
    # Case, surrounding and repeated spaces and Unicode compatibility forms do not count.
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _same_id(sent: str, pk: int) -> bool:
    sent = sent.strip()
    return sent.isdigit() and int(sent) == pk


def identity_mismatch(*, sent: dict, referral: Referral) -> str:
    """Why the run's patient is not the referral's, in words; "" when nothing disagrees.

    Only what the file names is compared: a run started on the IVLS itself names no ids.
    The client id is checked too: it is the PIMS's own id, sent in the work request.
    """
    consultation = referral.consultation
    patient = consultation.patient
    problems = []
    patient_sent = sent.get("patient", {})
    client_sent = sent.get("client", {})
    if patient_sent.get("id") and not _same_id(patient_sent["id"], patient.pk):
        problems.append(
            f"the file names patient id {patient_sent['id']}, the referral is for patient "
            f"id {patient.pk}"
        )
    if patient_sent.get("name") and _name_key(patient_sent["name"]) != _name_key(patient.name):
        problems.append(
            f"the file names the patient {patient_sent['name']!r}, the referral's patient "
            f"is {patient.name!r}"
        )
    if client_sent.get("id") and not _same_id(client_sent["id"], patient.client_id):
        problems.append(
            f"the file names client id {client_sent['id']}, the referral's client id is "
            f"{patient.client_id}"
        )
    if not problems:
        return ""
    text = "; ".join(problems)
    return f"Identity check failed for referral {referral.number}: {text}."


def _sent(run: RunData) -> dict:
    return {
        "requisition_number": run.requisition_number,
        "client": {
            "id": run.client_id,
            "first_name": run.client_first_name,
            "last_name": run.client_last_name,
        },
        "patient": {
            "id": run.patient_id,
            "name": run.patient_name,
            "species": run.species,
            "gender": run.gender,
            "breed": run.breed,
        },
        "doctor": {"first_name": run.doctor_first_name, "last_name": run.doctor_last_name},
    }


# --------------------------------------------------------------------------------------
# Attaching a run's current results to a referral
# --------------------------------------------------------------------------------------


def _auto_items(item_list, units: dict[str, str]) -> dict[str, Item]:
    """New zero-price lab items for Codes nobody set up (``units``: Code -> unit), by Code.

    Two runs for different referrals may race to create the same one: the insert skips a
    Code another transaction created meanwhile (it waits for that one to commit), and the
    read after it returns whichever row exists, as the department's own item would be.
    """
    Item.objects.bulk_create(
        [
            Item(
                item_list=item_list,
                kind=Item.KIND_LAB,
                code=code,
                name=code,
                price=Decimal("0.00"),
                unit=unit,
                auto_created=True,
            )
            for code, unit in units.items()
        ],
        ignore_conflicts=True,
    )
    return items_by_codes(item_list=item_list, codes=units)


def _lines_created(lines: list[ReferralLine]) -> list[ReferralLine]:
    if connection.features.can_return_rows_from_bulk_insert:
        return ReferralLine.objects.bulk_create(lines)
    # A backend that cannot return the new ids from a multi-row insert (SQLite before 3.35).
    for line in lines:
        line.save(force_insert=True)
    return lines


def _attach_results(lab_run: LabRun, referral: Referral) -> None:
    """Put the run's current results on the referral's lines, adding lines (and charges)
    for Codes the referral does not have yet. The caller holds the referral and run locks.

    The queries do not grow with the number of analytes: the department's items for the
    new Codes are read at once, missing ones created at once, and their charges and lines
    inserted at once.
    """
    lines = list(
        ReferralLine.objects.select_for_update(of=("self",))
        .filter(referral=referral)
        .select_related("item")
        .order_by("id")
    )
    by_code: dict[str, ReferralLine] = {}
    yielded: set[str] = set()
    for line in lines:
        if line.item.code:
            by_code.setdefault(line.item.code, line)
        if line.item.is_ivls_analysis and line.item.yields:
            yielded.update(line.item.yields)
    results = list(Result.objects.filter(run=lab_run, is_current=True).order_by("id"))
    # Codes the referral has no line for, in the run's order, with the unit first sent.
    new_codes: dict[str, str] = {}
    for result in results:
        if result.code not in by_code:
            new_codes.setdefault(result.code, result.unit)
    if new_codes:
        item_list = item_list_for_department(referral.department)
        items = items_by_codes(item_list=item_list, codes=new_codes)
        unknown = {code: unit for code, unit in new_codes.items() if code not in items}
        if unknown:
            items.update(_auto_items(item_list, unknown))
        added = [items[code] for code in new_codes]
        # The ordering item (e.g. a Chem 17) carries the charge for what it yields, and an
        # item matching created costs nothing.
        charges = consultation_lines_add(
            consultation=referral.consultation,
            charges=[
                (item, Decimal("0.00") if item.auto_created or item.code in yielded else None)
                for item in added
            ],
        )
        new_lines = _lines_created(
            [
                ReferralLine(
                    referral=referral, consultation_line=charge, item=item, added_by_matching=True
                )
                for item, charge in zip(added, charges, strict=True)
            ]
        )
        by_code.update(zip(new_codes, new_lines, strict=True))
    for result in results:
        result.referral = referral
        result.referral_line = by_code[result.code]
    Result.objects.bulk_update(results, ["referral", "referral_line"])
    # Older revisions go with the run, so the history shows on the referral too.
    Result.objects.filter(run=lab_run, is_current=False).update(referral=referral)
    ResultDocument.objects.filter(run=lab_run).update(referral=referral)


def _attach_waiting_documents(lab_run: LabRun, departments: list[Department]) -> None:
    """PDFs that arrived before their run wait with its diagnostic_set_id."""
    waiting = ResultDocument.objects.filter(
        run__isnull=True,
        diagnostic_set_id=lab_run.diagnostic_set_id,
        departments__in=departments,
    ).values_list("pk", flat=True)
    ResultDocument.objects.filter(pk__in=list(waiting)).update(
        run=lab_run, referral=lab_run.referral
    )


def _state_for(
    lab_run: LabRun, referral: Referral | None, sent: dict, *, identity_confirmed: bool
) -> tuple[str, str]:
    """(review_state, reason) for attaching ``lab_run`` to ``referral``."""
    if referral is None:
        number = lab_run.requisition_number
        if not number:
            return LabRun.STATE_UNMATCHED, "The run names no requisition number."
        return (
            LabRun.STATE_UNMATCHED,
            f"No referral {number} in the department(s) the run was posted for.",
        )
    if referral.status == state.CANCELLED:
        return (
            LabRun.STATE_NEEDS_REVIEW,
            f"Referral {referral.number} is cancelled; results are never attached to it "
            "without a person deciding.",
        )
    if not identity_confirmed:
        reason = identity_mismatch(sent=sent, referral=referral)
        if reason:
            return LabRun.STATE_NEEDS_REVIEW, reason[:300]
    if item_list_for_department(referral.department) is None:
        on_lines = set(referral.lines.values_list("item__code", flat=True))
        codes = set(
            Result.objects.filter(run=lab_run, is_current=True).values_list("code", flat=True)
        )
        if codes - on_lines:
            return (
                LabRun.STATE_NEEDS_REVIEW,
                f"{referral.department.name} has no item list, so results for Codes the "
                "referral does not have cannot be added to it.",
            )
    return LabRun.STATE_MATCHED, ""


def locked_referral(referral_id: int | None) -> Referral | None:
    if referral_id is None:
        return None
    return (
        Referral.objects.select_for_update(of=("self",))
        .select_related("department", "consultation__patient")
        .get(pk=referral_id)
    )


def run_attach_locked(
    *,
    lab_run: LabRun,
    referral: Referral,
    identity_confirmed: bool,
    actor_user=None,
    actor_type: str = AuditEvent.ACTOR_PLUGIN,
) -> LabRun:
    """Attach a run whose locks (referral, run) the caller holds; the review queue uses
    this too, so a person attaching a run gets exactly what matching would have done."""
    review_state, reason = _state_for(
        lab_run, referral, lab_run.sent, identity_confirmed=identity_confirmed
    )
    if review_state != LabRun.STATE_MATCHED:
        raise ValidationError(reason)
    lab_run.referral = referral
    lab_run.review_state = LabRun.STATE_MATCHED
    lab_run.review_reason = ""
    lab_run.save(update_fields=["referral", "review_state", "review_reason"])
    _attach_results(lab_run, referral)
    _attach_waiting_documents(lab_run, list(lab_run.departments.all()))
    kwargs = {"actor_type": actor_type} if actor_user is None else {"actor_user": actor_user}
    referral_progress_update(referral=referral, **kwargs)
    return lab_run


# --------------------------------------------------------------------------------------
# run_record
# --------------------------------------------------------------------------------------


@transaction.atomic
def run_record(*, departments, run: RunData) -> LabRun:
    """Record one analyser run for the departments it was posted for, and match it.

    Returns the LabRun with ``revision_recorded`` set: False when the run's current results
    already equal these (a resend, or the same file processed twice), which changes nothing.
    """
    departments = _departments(departments)
    unit_key = unit_key_for(departments)
    identity = {
        "unit_key": unit_key,
        "instrument": run.instrument[:100],
        "diagnostic_set_id": run.run_id[:100],
    }
    rows = _rows(run.assays)
    sent = _sent(run)

    # 1. Which referral. A run already attached stays with its referral when a person put
    # it there (the person's decision covers its corrections); otherwise the number decides.
    existing = LabRun.objects.filter(**identity).values("referral_id", "decided_by_id").first()
    person_referral = (
        existing["referral_id"] if existing and existing["decided_by_id"] is not None else None
    )
    number = run.requisition_number.strip()
    candidate_id = person_referral
    if candidate_id is None and number.isdigit():
        candidate_id = (
            Referral.objects.filter(number=int(number), department__in=departments)
            .values_list("pk", flat=True)
            .first()
        )
    # Lock order: referral, then run, then lines.
    referral = locked_referral(candidate_id)
    lock_run_identity(identity["diagnostic_set_id"])
    lab_run = LabRun.objects.select_for_update().filter(**identity).first()
    created = lab_run is None
    if created:
        try:
            with transaction.atomic():
                lab_run = LabRun.objects.create(
                    **identity, review_state=LabRun.STATE_UNMATCHED, current_revision=0
                )
                lab_run.departments.set(departments)
        except IntegrityError:  # only without the advisory lock (never on PostgreSQL)
            lab_run = LabRun.objects.select_for_update().get(**identity)
            created = False
    if not created and lab_run.decided_by_id is not None and lab_run.referral_id is not None:
        if referral is None or referral.pk != lab_run.referral_id:
            # A person attached it between our read and our lock. Taking this referral's lock
            # after the run's breaks the lock order; PostgreSQL would report a deadlock, and
            # the file is retried.
            referral = locked_referral(lab_run.referral_id)
        person_referral = lab_run.referral_id

    # 2. Same results as now: nothing changes (idempotent processing, resends).
    if not created and lab_run.current_revision and _stored_content(lab_run) == _content(rows):
        lab_run.revision_recorded = False
        return lab_run

    # 3. A new revision, numbered under the run's lock; older ones stay as history.
    revision = lab_run.current_revision + 1
    Result.objects.filter(run=lab_run, is_current=True).update(is_current=False)
    Result.objects.bulk_create(
        Result(
            run=lab_run,
            revision=revision,
            code=row.code,
            value_text=row.value_text,
            value_number=row.value_number,
            unit=row.unit,
            low=row.low,
            high=row.high,
            critical_low=row.critical_low,
            critical_high=row.critical_high,
            qualifier=row.qualifier,
            flag=result_flag(
                row.value_number,
                low=row.low,
                high=row.high,
                critical_low=row.critical_low,
                critical_high=row.critical_high,
            ),
        )
        for row in rows
    )
    previous_state = None if created else lab_run.review_state
    previous_referral_id = None if created else lab_run.referral_id
    zone = departments[0].zone  # departments sharing an IVLS share a time zone
    lab_run.current_revision = revision
    lab_run.run_time = timezone.make_aware(run.run_time, zone) if run.run_time else None
    lab_run.run_time_text = run.run_time_text[:50]
    lab_run.requisition_number = number[:40]
    lab_run.sent = sent
    lab_run.notes = "\n\n".join(run.notes)

    # 4. Where it goes.
    if previous_state == LabRun.STATE_DISMISSED:
        review_state, reason = (
            LabRun.STATE_NEEDS_REVIEW,
            f"Revision {revision} arrived after the run was dismissed.",
        )
    elif (
        previous_referral_id is not None
        and person_referral is None
        and (referral is None or referral.pk != previous_referral_id)
    ):
        review_state, reason = (
            LabRun.STATE_NEEDS_REVIEW,
            f"Revision {revision} names requisition {number or '(none)'}, not the referral "
            "the run was attached to.",
        )
    else:
        review_state, reason = _state_for(
            lab_run, referral, sent, identity_confirmed=person_referral is not None
        )
    if review_state != LabRun.STATE_MATCHED:
        lab_run.referral = None
        lab_run.review_state = review_state
        lab_run.review_reason = reason[:300]
        if previous_state == LabRun.STATE_DISMISSED:
            lab_run.decided_by = None
            lab_run.decided_at = None
        lab_run.save()
        # Results stay with the run alone until a person decides.
        Result.objects.filter(run=lab_run).update(referral=None, referral_line=None)
        ResultDocument.objects.filter(run=lab_run).update(referral=None)
        _attach_waiting_documents(lab_run, departments)
    else:
        lab_run.save()
        run_attach_locked(
            lab_run=lab_run,
            referral=referral,
            identity_confirmed=person_referral is not None,
            actor_type=AuditEvent.ACTOR_PLUGIN,
        )
    audit_event_write(
        action="labs.run_recorded",
        department=referral.department if lab_run.referral_id else departments[0],
        actor_type=AuditEvent.ACTOR_PLUGIN,
        subject=lab_run,
        patient_id=referral.consultation.patient_id if lab_run.referral_id else None,
        data={
            "instrument": lab_run.instrument,
            "diagnostic_set_id": lab_run.diagnostic_set_id,
            "revision": revision,
            "kind": run.kind,
            "state": lab_run.review_state,
            "referral": referral.number if lab_run.referral_id else None,
            "units": unit_key,
        },
    )
    lab_run.revision_recorded = True
    return lab_run


# --------------------------------------------------------------------------------------
# PDF reports of runs
# --------------------------------------------------------------------------------------


@transaction.atomic
def result_document_record(
    *, departments, content: bytes, diagnostic_set_id: str, file_name: str = ""
) -> ResultDocument:
    """Keep a run's PDF report and attach it to the run's referral, now or when the run
    arrives. Returns the document with ``outcome`` "accepted" or "duplicate"."""
    departments = _departments(departments)
    unit_key = unit_key_for(departments)
    sha256 = hashlib.sha256(content).hexdigest()
    diagnostic_set_id = diagnostic_set_id[:100]
    existing = ResultDocument.objects.filter(unit_key=unit_key, sha256=sha256).first()
    if existing is not None:
        existing.outcome = "duplicate"
        return existing
    lock_run_identity(diagnostic_set_id)
    lab_run = (
        LabRun.objects.filter(diagnostic_set_id=diagnostic_set_id, departments__in=departments)
        .order_by("-created_at", "-id")
        .first()
    )
    document = ResultDocument(
        run=lab_run,
        referral_id=lab_run.referral_id if lab_run else None,
        unit_key=unit_key,
        file_name=(file_name or f"{diagnostic_set_id}.pdf")[:255],
        sha256=sha256,
        diagnostic_set_id=diagnostic_set_id,
        size=len(content),
    )
    # The file is written before the row that names it commits.
    document.pdf.save(document.file_name, ContentFile(content), save=False)
    try:
        with transaction.atomic():
            document.save()
            document.departments.set(departments)
    except IntegrityError:
        # The same PDF posted twice at the same instant: the other copy won.
        document.pdf.delete(save=False)
        existing = ResultDocument.objects.get(unit_key=unit_key, sha256=sha256)
        existing.outcome = "duplicate"
        return existing
    document.outcome = "accepted"
    return document
