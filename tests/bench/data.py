"""``python -m tests.bench.data [--force] [--scale S]``: build the benchmark practice.

A practice at scale, generated deterministically (one fixed seed) and loaded with COPY
into the template database ``pims_bench_template`` on the private PostgreSQL in
``var/bench/pg``: 100 departments, 12,000 clients with 20,000 patients, 100,000 lab
referrals of the last three years with more than a million results, and, as the plug-in
would find them on a busy morning, a backlog of undelivered work requests and referrals
that wait for their results. ``make bench`` copies the template for each run.

The rows look like what the services write: a referral's ordering line and charge, the
work request the IVLS transport rendered (with the real renderer), the analyte lines and
zero-price charges matching adds, the run, the stored result file and its results, and
the audit events. Foreign-key triggers are off while loading (the generator keeps the
references right by construction); the load is built in dependency order regardless.
Untimed; takes a few minutes. Re-running is a no-op while the template is current.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from tests.bench import cluster

# Bump when the generated data changes, so `make bench-data` rebuilds an older template.
DATA_VERSION = 4
SEED = 20261122

DEPARTMENTS = 100
DEPARTMENTS_PER_ITEM_LIST = 10
CLIENTS = 12_000
PATIENTS = 20_000
REFERRALS = 100_000
CONSULTATIONS_WITHOUT_LAB = 15_000
# The poll's backlog: undelivered New work requests per department...
QUEUED_PER_DEPARTMENT = 10
# ...and delivered ones still waiting for results (what the ingest benchmark posts for).
SENT_PER_DEPARTMENT = 60
CANCELLED_SHARE = 0.005
SECOND_REFERRAL_SHARE = 0.08  # a second referral on the same visit
# Consultations in department 1 with this many complete Chem 17 referrals (the pages).
PAGE_SIZES = (1, 10, 50)
MIN_RESULTS = 1_000_000

TIME_ZONE = "Europe/Helsinki"
ZONE = zoneinfo.ZoneInfo(TIME_ZONE)
# Data ends here (fixed, so the data does not depend on the day it is built).
ANCHOR = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
HISTORY = dt.timedelta(days=3 * 365)
CHUNK = 5_000  # referrals generated and copied per round

# What is ordered, for dogs; cats get the feline SNAP instead of the canine one.
ORDER_MIX = [
    (("CHEM17",), 30),
    (("CHEM10",), 10),
    (("CBC",), 20),
    (("LYTE4",), 10),
    (("SDMA",), 10),
    (("SNAP4DX",), 10),
    (("CHEM17", "CBC"), 5),
    (("SNAPPARVO",), 5),
]
ORDER_MIX_CODES = [codes for codes, _ in ORDER_MIX]
ORDER_MIX_WEIGHTS = [weight for _, weight in ORDER_MIX]
FELINE_SNAP = {"SNAP4DX": "SNAPFF", "SNAPPARVO": "SNAPFF"}

FIRST_NAMES = (
    "Maria Anna Aino Helmi Sofia Emma Ella Olivia Aada Venla Juha Mikko Timo Jari Antti "
    "Matti Pekka Jukka Kari Ville Lauri Eetu Onni Leo Elias Noora Laura Sanna Kaisa Riikka"
).split()
LAST_NAMES = (
    "Virtanen Korhonen Mäkinen Nieminen Mäkelä Hämäläinen Laine Heikkinen Koskinen Järvinen "
    "Lehtonen Lehtinen Saarinen Salminen Heinonen Niemi Heikkilä Kinnunen Salonen Turunen "
    "Salo Laitinen Tuominen Rantanen Karjalainen Jokinen Mattila Savolainen Lahtinen Ahonen"
).split()
CITIES = "Helsinki Espoo Vantaa Tampere Turku Oulu Lahti Kuopio Jyväskylä Pori".split()
DOG_NAMES = "Rosa Musti Hugo Rekku Nelli Vili Lucky Bella Max Luna Otto Sulo Pepi Rölli".split()
CAT_NAMES = "Mirri Pilvi Lumi Nöpö Kisu Viiru Misu Tassu Oskari Sisu Pörri Minni".split()
DOG_BREEDS = (
    "Labrador Retriever",
    "Finnish Lapphund",
    "German Shepherd",
    "Jack Russell Terrier",
    "Golden Retriever",
    "Mixed breed",
)
CAT_BREEDS = ("European Shorthair", "Maine Coon", "Norwegian Forest Cat", "Siamese", "Ragdoll")
SEXES = ("MALE_INTACT", "MALE_NEUTERED", "FEMALE_INTACT", "FEMALE_SPAYED")
OTHER_ITEMS = [
    ("procedure", "Consultation", "CONS", "55.00"),
    ("procedure", "Follow-up visit", "FOLLOW", "35.00"),
    ("procedure", "Vaccination", "VACC", "42.00"),
    ("procedure", "Dental scaling", "DENTAL", "180.00"),
    ("procedure", "Blood sampling", "SAMPLE", "15.00"),
    ("medicine", "Meloxicam 1.5 mg/ml oral suspension", "MELOX", "24.90"),
    ("medicine", "Amoxicillin-clavulanic acid 250 mg", "AMOXI", "18.50"),
    ("supply", "Elizabethan collar", "COLLAR", "12.00"),
]
PANELS = [
    ("Senior wellness", "PNL-SENIOR", ("CHEM17", "LYTE4", "CBC", "SDMA", "TT4")),
    ("Pre-anaesthetic", "PNL-PREANAES", ("CHEM10", "CBC")),
]


def _log(message: str) -> None:
    print(f"[bench-data {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------
# COPY into Django's tables
# --------------------------------------------------------------------------------------


class Table:
    """Rows for one table, COPYed in column order. Columns the generator does not give
    get the model field's own default, so a field added later with a default needs no
    change here; one without a default stops the build with its name."""

    def __init__(self, model, columns: list[str]):
        from django.db import connection

        self.model = model
        self.name = model._meta.db_table
        self.columns = columns
        self.rows: list[tuple] = []
        self.count = 0
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(columns) - set(by_attname)
        if unknown:
            raise SystemExit(f"{self.name} has no columns {sorted(unknown)}: update tests/bench")
        defaults = []
        for name, f in by_attname.items():
            if name in columns:
                continue
            value = f.get_db_prep_save(f.get_default(), connection)
            if value is None and not f.null:
                raise SystemExit(
                    f"{self.name}.{f.column} needs a value and has no default: "
                    "teach tests/bench/data.py about it"
                )
            defaults.append((f.column, value))
        self.default_columns = [column for column, _ in defaults]
        self.default_values = tuple(value for _, value in defaults)
        self.sql_columns = [by_attname[c].column for c in columns] + self.default_columns

    def add(self, *row) -> None:
        self.rows.append(row)

    def flush(self, conn) -> None:
        if not self.rows:
            return
        columns = ", ".join(f'"{c}"' for c in self.sql_columns)
        extra = self.default_values
        with conn.cursor() as cur, cur.copy(f'COPY "{self.name}" ({columns}) FROM STDIN') as copy:
            for row in self.rows:
                copy.write_row(row + extra)
        self.count += len(self.rows)
        self.rows.clear()


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


@dataclass
class ItemRow:
    id: int
    code: str
    name: str
    price: Decimal
    vat: Decimal


@dataclass
class PatientRow:
    id: int
    client_id: int
    name: str
    species: str
    sex: str
    breed: str
    birth: dt.date
    weight: Decimal
    department: int


@dataclass
class Ids:
    counters: dict[str, int] = field(default_factory=dict)

    def next(self, name: str) -> int:
        value = self.counters.get(name, 0) + 1
        self.counters[name] = value
        return value


def _places(*texts: str) -> int:
    return max((len(t.split(".", 1)[1]) if "." in t else 0 for t in texts if t), default=0)


class Builder:
    def __init__(self, conn, scale: float):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password

        from billing.catalog import load_catalog
        from billing.models import (
            BillingSettings,
            ConsultationLine,
            Item,
            ItemList,
            VatRate,
        )
        from integrations.ivls.models import (
            InboundResultContent,
            InboundResultFile,
            InboundResultFileDepartment,
            IVLSConnection,
            WorkRequest,
        )
        from integrations.ivls.passwords import password_digest
        from labs.models import LabPanel, LabRun, Referral, ReferralLine, Result
        from patients.models import Client, Consultation, Patient, WeightMeasurement
        from pims.models import AuditEvent, Department, Membership

        self.conn = conn
        self.rng = random.Random(SEED)  # noqa: S311 - generated data, not security
        self.ids = Ids()
        self.catalog = load_catalog()
        self.scale = scale
        self.clients = max(200, round(CLIENTS * scale))
        self.patients = max(300, round(PATIENTS * scale))
        self.referrals = max(500, round(REFERRALS * scale))
        self.no_lab = max(100, round(CONSULTATIONS_WITHOUT_LAB * scale))
        self.queued_per_dept = max(1, round(QUEUED_PER_DEPARTMENT * min(1.0, scale * 10)))
        self.sent_per_dept = max(3, round(SENT_PER_DEPARTMENT * min(1.0, scale * 10)))
        self.user_hash = make_password(cluster.USER_PASSWORD)
        self.ivls_digest = password_digest(cluster.IVLS_PASSWORD)

        T = Table
        # In dependency order: flush() copies them in this order.
        self.t = {
            "user": T(
                get_user_model(),
                [
                    "id",
                    "password",
                    "username",
                    "first_name",
                    "last_name",
                    "email",
                    "is_staff",
                    "is_superuser",
                    "is_active",
                    "date_joined",
                ],
            ),
            "vat": T(VatRate, ["id", "name", "rate"]),
            "item_list": T(ItemList, ["id", "name", "prices_include_vat"]),
            "department": T(
                Department,
                [
                    "id",
                    "name",
                    "time_zone",
                    "weight_unit",
                    "item_list_id",
                    "address",
                    "phone",
                    "email",
                ],
            ),
            "membership": T(Membership, ["id", "user_id", "department_id", "role"]),
            "item": T(
                Item,
                [
                    "id",
                    "item_list_id",
                    "kind",
                    "name",
                    "code",
                    "price",
                    "vat_rate_id",
                    "is_ivls_analysis",
                    "yields",
                    "unit",
                ],
            ),
            "billing_settings": T(BillingSettings, ["department_id"]),
            "panel": T(LabPanel, ["id", "item_list_id", "name", "code"]),
            "panel_items": T(LabPanel.items.through, ["id", "labpanel_id", "item_id"]),
            "ivls_connection": T(
                IVLSConnection,
                ["department_id", "enabled", "password_digest", "password_changed_at"],
            ),
            "client": T(
                Client,
                [
                    "id",
                    "first_name",
                    "last_name",
                    "address",
                    "postal_code",
                    "city",
                    "phone",
                    "email",
                    "created_at",
                ],
            ),
            "patient": T(
                Patient,
                [
                    "id",
                    "client_id",
                    "name",
                    "species",
                    "breed",
                    "sex",
                    "birth_date",
                    "microchip",
                    "created_at",
                ],
            ),
            "weight": T(WeightMeasurement, ["id", "patient_id", "value", "unit", "measured_at"]),
            "consultation": T(
                Consultation,
                ["id", "patient_id", "department_id", "vet_id", "started_at", "status", "reason"],
            ),
            "consultation_line": T(
                ConsultationLine,
                [
                    "id",
                    "consultation_id",
                    "item_id",
                    "description",
                    "quantity",
                    "unit_price",
                    "vat_rate",
                    "added_at",
                    "added_by_id",
                ],
            ),
            "referral": T(
                Referral,
                [
                    "id",
                    "number",
                    "consultation_id",
                    "department_id",
                    "status",
                    "sends_to_ivls",
                    "created_at",
                    "created_by_id",
                    "status_changed_at",
                    "cancel_reason",
                ],
            ),
            "referral_line": T(
                ReferralLine,
                ["id", "referral_id", "consultation_line_id", "item_id", "added_by_matching"],
            ),
            "run": T(
                LabRun,
                [
                    "id",
                    "unit_key",
                    "referral_id",
                    "instrument",
                    "diagnostic_set_id",
                    "run_time",
                    "run_time_text",
                    "requisition_number",
                    "sent",
                    "notes",
                    "review_state",
                    "current_revision",
                    "created_at",
                ],
            ),
            "run_departments": T(LabRun.departments.through, ["id", "labrun_id", "department_id"]),
            "result_file": T(
                InboundResultFile,
                [
                    "id",
                    "sha256",
                    "file_name",
                    "size",
                    "received_at",
                    "unit_key",
                    "status",
                    "attempts",
                    "claimed_at",
                    "processed_at",
                    "message_type",
                    "requisition_number",
                    "diagnostic_set_id",
                    "run_id",
                ],
            ),
            "result_content": T(InboundResultContent, ["result_file_id", "data"]),
            "result_file_department": T(
                InboundResultFileDepartment, ["id", "result_file_id", "department_id", "sha256"]
            ),
            "result": T(
                Result,
                [
                    "id",
                    "run_id",
                    "revision",
                    "referral_id",
                    "referral_line_id",
                    "code",
                    "value_text",
                    "value_number",
                    "unit",
                    "low",
                    "high",
                    "critical_low",
                    "critical_high",
                    "qualifier",
                    "flag",
                    "is_current",
                    "created_at",
                ],
            ),
            "work_request": T(
                WorkRequest,
                [
                    "id",
                    "department_id",
                    "referral_id",
                    "action",
                    "xml",
                    "created_at",
                    "delivered_at",
                ],
            ),
            "audit": T(
                AuditEvent,
                [
                    "id",
                    "at",
                    "department_id",
                    "actor_type",
                    "actor_user_id",
                    "action",
                    "subject_type",
                    "subject_id",
                    "patient_id",
                    "data",
                ],
            ),
        }
        self.referral_label = Referral._meta.label
        self.items: dict[int, dict[str, ItemRow]] = {}  # item list -> code -> item
        self.vets: dict[int, list[tuple[int, str, str]]] = {}  # department -> vets
        self.client_names: dict[int, tuple[str, str]] = {}
        self.patient_rows: list[PatientRow] = []
        self.by_department: dict[int, list[PatientRow]] = {}
        self.special: dict = {}

    # -- helpers ----------------------------------------------------------------------

    def flush(self, *names: str) -> None:
        for name in names or self.t:
            self.t[name].flush(self.conn)

    def item_list_of(self, department: int) -> int:
        return (department - 1) // DEPARTMENTS_PER_ITEM_LIST + 1

    def audit(self, at, department, action, subject_id, patient_id, data, user=None, actor=None):
        from psycopg.types.json import Jsonb

        self.t["audit"].add(
            self.ids.next("audit"),
            at,
            department,
            actor or ("user" if user else "system"),
            user,
            action,
            self.referral_label,
            str(subject_id),
            patient_id,
            Jsonb(data),
        )

    # -- the practice -----------------------------------------------------------------

    def practice(self) -> None:
        rng = self.rng
        t = self.t
        joined = ANCHOR - HISTORY - dt.timedelta(days=30)
        t["user"].add(
            1,
            self.user_hash,
            cluster.USERNAME,
            "Bench",
            "Vet",
            "bench@example.org",
            False,
            False,
            True,
            joined,
        )
        self.ids.counters["user"] = 1
        t["vat"].add(1, "Standard", Decimal("25.50"))
        t["vat"].add(2, "Medicines", Decimal("14.00"))
        vat = {1: Decimal("25.50"), 2: Decimal("14.00")}
        lists = (DEPARTMENTS - 1) // DEPARTMENTS_PER_ITEM_LIST + 1
        for list_id in range(1, lists + 1):
            t["item_list"].add(list_id, f"Price list {list_id}", True)
            codes: dict[str, ItemRow] = {}
            for entry in self.catalog.values():
                item_id = self.ids.next("item")
                price = Decimal(entry.price or "0")
                t["item"].add(
                    item_id,
                    list_id,
                    "lab",
                    entry.name,
                    entry.code,
                    price,
                    1,
                    entry.kind == "order",
                    _jsonb(list(entry.yields)),
                    entry.unit,
                )
                codes[entry.code] = ItemRow(item_id, entry.code, entry.name, price, vat[1])
            for kind, name, code, price_text in OTHER_ITEMS:
                item_id = self.ids.next("item")
                vat_id = 2 if kind == "medicine" else 1
                price = Decimal(price_text)
                t["item"].add(
                    item_id, list_id, kind, name, code, price, vat_id, False, _jsonb([]), ""
                )
                codes[code] = ItemRow(item_id, code, name, price, vat[vat_id])
            for name, code, members in PANELS:
                panel_id = self.ids.next("panel")
                t["panel"].add(panel_id, list_id, name, code)
                for member in members:
                    t["panel_items"].add(self.ids.next("panel_item"), panel_id, codes[member].id)
            self.items[list_id] = codes

        for dept in range(1, DEPARTMENTS + 1):
            city = CITIES[(dept - 1) % len(CITIES)]
            t["department"].add(
                dept,
                f"{city} Animal Clinic {dept:03d}",
                TIME_ZONE,
                "kg",
                self.item_list_of(dept),
                f"Eläinlääkärintie {dept}, {city}",
                f"+358 9 {dept:07d}",
                f"clinic{dept:03d}@example.org",
            )
            t["billing_settings"].add(dept)
            t["ivls_connection"].add(dept, True, self.ivls_digest, joined)
            t["membership"].add(self.ids.next("membership"), 1, dept, "vet")
            self.vets[dept] = []
            for role in ("vet", "vet", "nurse"):
                user_id = self.ids.next("user")
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                t["user"].add(
                    user_id,
                    self.user_hash,
                    f"{role}{user_id}",
                    first,
                    last,
                    f"{role}{user_id}@example.org",
                    False,
                    False,
                    True,
                    joined,
                )
                t["membership"].add(self.ids.next("membership"), user_id, dept, role)
                if role == "vet":
                    self.vets[dept].append((user_id, first, last))
        self.flush()
        _log(f"practice: {DEPARTMENTS} departments, {lists} item lists, users and settings")

    def clients_and_patients(self) -> None:
        rng = self.rng
        t = self.t
        start = ANCHOR - HISTORY
        for client_id in range(1, self.clients + 1):
            city = rng.choice(CITIES)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            self.client_names[client_id] = (first, last)
            t["client"].add(
                client_id,
                first,
                last,
                f"Katu {rng.randint(1, 120)}",
                f"{rng.randint(100, 990):03d}00",
                city,
                f"+358 40 {client_id:07d}",
                f"owner{client_id}@example.org",
                start - dt.timedelta(days=rng.randint(0, 2000)),
            )
        for patient_id in range(1, self.patients + 1):
            # The first clients have two or three animals.
            client_id = (patient_id - 1) % self.clients + 1
            roll = rng.random()
            species = "CANINE" if roll < 0.55 else "FELINE" if roll < 0.92 else "LAGOMORPH"
            if species == "FELINE":
                name, breed = rng.choice(CAT_NAMES), rng.choice(CAT_BREEDS)
                weight = Decimal(f"{rng.uniform(2.5, 7.5):.1f}")
            elif species == "CANINE":
                name, breed = rng.choice(DOG_NAMES), rng.choice(DOG_BREEDS)
                weight = Decimal(f"{rng.uniform(4.0, 45.0):.1f}")
            else:
                name, breed = "Pupu", "Dwarf rabbit"
                weight = Decimal(f"{rng.uniform(0.8, 2.5):.1f}")
            birth = (ANCHOR - dt.timedelta(days=rng.randint(120, 16 * 365))).date()
            row = PatientRow(
                id=patient_id,
                client_id=client_id,
                name=name,
                species=species,
                sex=rng.choice(SEXES),
                breed=breed,
                birth=birth,
                weight=weight,
                department=(client_id - 1) % DEPARTMENTS + 1,
            )
            self.patient_rows.append(row)
            self.by_department.setdefault(row.department, []).append(row)
            t["patient"].add(
                patient_id,
                client_id,
                name,
                species,
                breed,
                row.sex,
                birth,
                f"246{patient_id:012d}",
                start,
            )
            for months_ago, factor in ((14, Decimal("0.95")), (2, Decimal("1"))):
                t["weight"].add(
                    self.ids.next("weight"),
                    patient_id,
                    (weight * factor).quantize(Decimal("0.01")),
                    "kg",
                    ANCHOR - dt.timedelta(days=30 * months_ago),
                )
        self.flush("client", "patient", "weight")
        _log(f"{self.clients} clients, {self.patients} patients, {2 * self.patients} weights")

    # -- visits and referrals -----------------------------------------------------------

    def consultation(self, patient: PatientRow, department: int, vet, at, status, reason):
        consultation_id = self.ids.next("consultation")
        self.t["consultation"].add(
            consultation_id, patient.id, department, vet[0], at, status, reason
        )
        item = self.items[self.item_list_of(department)]["CONS"]
        self.charge(consultation_id, item, at, vet[0])
        return consultation_id

    def charge(self, consultation_id: int, item: ItemRow, at, user_id, price=None) -> int:
        line_id = self.ids.next("consultation_line")
        self.t["consultation_line"].add(
            line_id,
            consultation_id,
            item.id,
            item.name,
            Decimal("1.000"),
            item.price if price is None else price,
            item.vat,
            at,
            user_id,
        )
        return line_id

    def line(
        self, referral_id, consultation_id, item: ItemRow, at, user_id, *, matched, price=None
    ):
        consultation_line = self.charge(consultation_id, item, at, user_id, price)
        line_id = self.ids.next("referral_line")
        self.t["referral_line"].add(line_id, referral_id, consultation_line, item.id, matched)
        return line_id

    def work_request(self, referral, action, codes, at, delivered_at) -> None:
        from integrations.ivls.interlink import WorkRequestData, render_work_request

        wr_id = self.ids.next("work_request")
        patient: PatientRow = referral["patient"]
        vet = referral["vet"]
        xml = render_work_request(
            WorkRequestData(
                message_id=wr_id,
                sent_at_local=at.astimezone(ZONE).replace(tzinfo=None),
                action=action,
                sender_id="pims-bench",
                requisition_number=str(referral["number"]),
                client_id=str(patient.client_id),
                client_first_name=referral["client_first"],
                client_last_name=referral["client_last"],
                patient_id=str(patient.id),
                patient_name=patient.name,
                species=patient.species,
                gender=patient.sex,
                breed=patient.breed,
                birth_date=patient.birth,
                weight=patient.weight,
                weight_unit="kg",
                doctor_first_name=vet[1],
                doctor_last_name=vet[2],
                service_codes=tuple(codes),
            )
        )
        self.t["work_request"].add(
            wr_id, referral["department"], referral["id"], action, xml, at, delivered_at
        )

    def assay_values(self, analytes, species):
        """(code, unit, text, number, low, high, crit_low, crit_high, flag) per analyte."""
        rng = self.rng
        out = []
        numbers: dict[str, float] = {}
        for entry in analytes:
            low, high = entry.reference_range(species)
            crit_low, crit_high = entry.critical_low, entry.critical_high
            if entry.is_text:
                text = "Positive" if rng.random() < 0.1 else "Negative"
                out.append((entry.code, entry.unit, text, None, None, None, None, None, ""))
                continue
            if low and high:
                lo, hi = float(low), float(high)
                places = _places(low, high)
                roll = rng.random()
                if roll < 0.1 and lo > 0:
                    value = lo * rng.uniform(0.6, 0.97)
                elif roll < 0.2:
                    value = hi * rng.uniform(1.05, 1.6)
                else:
                    value = lo + (hi - lo) * rng.uniform(0.1, 0.9)
                text = f"{value:.{places}f}"
            else:  # a ratio: no range of its own
                top, bottom = {
                    "ALB/GLOB": ("ALB", "GLOB"),
                    "BUN/CREA": ("BUN", "CREA"),
                    "Na/K": ("Na", "K"),
                }.get(entry.code, ("", ""))
                if numbers.get(bottom):
                    text = f"{numbers.get(top, 0.0) / numbers[bottom]:.1f}"
                else:
                    text = f"{rng.uniform(0.5, 30):.1f}"
            v = float(text)
            numbers[entry.code] = v
            flag = ""
            bounds = [b for b in (low, high, crit_low, crit_high) if b]
            if bounds:
                if crit_low and v < float(crit_low):
                    flag = "LL"
                elif low and v < float(low):
                    flag = "L"
                elif crit_high and v > float(crit_high):
                    flag = "HH"
                elif high and v > float(high):
                    flag = "H"
                else:
                    flag = "N"
            out.append(
                (
                    entry.code,
                    entry.unit,
                    text,
                    text,
                    low or None,
                    high or None,
                    crit_low or None,
                    crit_high or None,
                    flag,
                )
            )
        return out

    def run(self, referral, instrument, analytes, lines_by_code, ordering_by_code, at, seq):
        """One matched analyser run: the run, its stored file and its results; analytes
        without a line of their own get one, as matching adds them."""
        t = self.t
        patient: PatientRow = referral["patient"]
        department = referral["department"]
        items = self.items[self.item_list_of(department)]
        run_id = self.ids.next("run")
        wall = at.astimezone(ZONE).replace(tzinfo=None)
        set_id = f"{wall:%Y%m%d_%H%M%S}_{run_id}"
        hour = wall.hour % 12 or 12
        half = "AM" if wall.hour < 12 else "PM"
        run_text = f"{wall:%m/%d/%Y} {hour:02d}:{wall:%M:%S}.{seq % 1000:03d} {half}"
        values = self.assay_values(analytes, patient.species)
        # As labs.services.matching keeps what the analyser sent, for the review queue.
        sent = {
            "requisition_number": str(referral["number"]),
            "client": {
                "id": str(patient.client_id),
                "first_name": referral["client_first"],
                "last_name": referral["client_last"],
            },
            "patient": {
                "id": str(patient.id),
                "name": patient.name,
                "species": patient.species,
                "gender": patient.sex,
                "breed": patient.breed,
            },
            "doctor": {"first_name": referral["vet"][1], "last_name": referral["vet"][2]},
        }
        processed = at + dt.timedelta(seconds=3)
        t["run"].add(
            run_id,
            str(department),
            referral["id"],
            instrument,
            set_id,
            at,
            run_text,
            str(referral["number"]),
            _jsonb(sent),
            "",
            "matched",
            1,
            processed,
        )
        t["run_departments"].add(self.ids.next("run_department"), run_id, department)
        content = _result_xml(referral, sent, instrument, set_id, run_text, values)
        sha = hashlib.sha256(content).hexdigest()
        file_id = self.ids.next("result_file")
        t["result_file"].add(
            file_id,
            sha,
            f"{set_id}.xml",
            len(content),
            at + dt.timedelta(seconds=1),
            str(department),
            "matched",
            1,
            at + dt.timedelta(seconds=2),
            processed,
            "Result",
            str(referral["number"]),
            set_id,
            run_id,
        )
        t["result_content"].add(file_id, content)
        t["result_file_department"].add(self.ids.next("file_department"), file_id, department, sha)
        for code, unit, text, number, low, high, crit_low, crit_high, flag in values:
            line_id = lines_by_code.get(code)
            if line_id is None:
                # Matching adds the analyte at zero: the ordering line carries the charge.
                line_id = self.line(
                    referral["id"],
                    referral["consultation"],
                    items[code],
                    processed,
                    None,
                    matched=True,
                    price=Decimal("0.00") if code in ordering_by_code else None,
                )
                lines_by_code[code] = line_id
            t["result"].add(
                self.ids.next("result"),
                run_id,
                1,
                referral["id"],
                line_id,
                code,
                text,
                number,
                unit,
                low,
                high,
                crit_low,
                crit_high,
                "=",
                flag,
                True,
                processed,
            )
        return processed

    def referral(self, *, patient, department, consultation, at, codes, status, vet) -> int:
        """One referral in ``status`` with everything the services would have written."""
        t = self.t
        rng = self.rng
        referral_id = self.ids.next("referral")
        number = 100000 + referral_id
        items = self.items[self.item_list_of(department)]
        client_first, client_last = self.client_names[patient.client_id]
        referral = {
            "id": referral_id,
            "number": number,
            "patient": patient,
            "department": department,
            "consultation": consultation,
            "vet": vet,
            "client_first": client_first,
            "client_last": client_last,
        }
        lines_by_code: dict[str, int] = {}
        ordering_by_code: set[str] = set()
        for code in codes:
            item = items[code]
            lines_by_code[code] = self.line(
                referral_id, consultation, item, at, vet[0], matched=False
            )
            ordering_by_code.update(self.catalog[code].yields)
        self.audit(
            at,
            department,
            "referral.created",
            referral_id,
            patient.id,
            {"number": number, "status": "queued", "codes": list(codes), "panels": []},
            user=vet[0],
        )
        delivered = None if status == "queued" else at + dt.timedelta(seconds=rng.randint(2, 9))
        self.work_request(referral, "New", codes, at, delivered)
        changed = at
        if status in ("sent", "complete", "cancelled"):
            self.audit(
                delivered,
                department,
                "referral.acknowledged",
                referral_id,
                patient.id,
                {"from": "queued", "to": "sent"},
                actor="plugin",
            )
            changed = delivered
        cancel_reason = ""
        if status == "cancelled":
            changed = at + dt.timedelta(minutes=rng.randint(5, 120))
            cancel_reason = "Owner declined"
            self.work_request(referral, "Cancel", codes, changed, changed + dt.timedelta(seconds=4))
            self.audit(
                changed,
                department,
                "referral.cancelled",
                referral_id,
                patient.id,
                {"from": "sent", "to": "cancelled", "reason": cancel_reason},
                user=vet[0],
            )
        elif status == "complete":
            # One run per instrument, in the order the codes were given.
            by_instrument: dict[str, list] = {}
            for code in codes:
                entry = self.catalog[code]
                analytes = [self.catalog[c] for c in entry.yields] if entry.yields else [entry]
                for analyte in analytes:
                    group = by_instrument.setdefault(analyte.instrument or entry.instrument, [])
                    if analyte not in group:
                        group.append(analyte)
            run_at = at + dt.timedelta(minutes=rng.randint(15, 60))
            for seq, (instrument, analytes) in enumerate(by_instrument.items()):
                changed = self.run(
                    referral,
                    instrument,
                    analytes,
                    lines_by_code,
                    ordering_by_code,
                    run_at + dt.timedelta(minutes=7 * seq),
                    seq + referral_id,
                )
            self.audit(
                changed,
                department,
                "referral.results_complete",
                referral_id,
                patient.id,
                {"from": "sent", "to": "complete"},
                actor="plugin",
            )
        t["referral"].add(
            referral_id,
            number,
            consultation,
            department,
            status,
            True,
            at,
            vet[0],
            changed,
            cancel_reason,
        )
        return referral_id

    def codes_for(self, patient: PatientRow) -> tuple[str, ...]:
        codes = self.rng.choices(ORDER_MIX_CODES, weights=ORDER_MIX_WEIGHTS)[0]
        if patient.species != "CANINE":
            codes = tuple(FELINE_SNAP.get(code, code) for code in codes)
        return codes

    def referrals_all(self) -> None:
        rng = self.rng
        pending = DEPARTMENTS * (self.queued_per_dept + self.sent_per_dept)
        history = self.referrals - pending - sum(PAGE_SIZES)
        step = (HISTORY - dt.timedelta(days=2)) / (history + self.no_lab)
        start = ANCHOR - HISTORY
        made = 0
        tables_in_order = [
            "consultation",
            "consultation_line",
            "referral",
            "referral_line",
            "run",
            "run_departments",
            "result_file",
            "result_content",
            "result_file_department",
            "result",
            "work_request",
            "audit",
        ]
        # History: visits with and without lab work, oldest first.
        last = None
        slots = history + self.no_lab
        lab_slots = set(rng.sample(range(slots), history))
        for slot in range(slots):
            at = start + step * slot + dt.timedelta(seconds=rng.randint(0, 600))
            if slot in lab_slots and last is not None and rng.random() < SECOND_REFERRAL_SHARE:
                patient, department, consultation, vet = last
            else:
                patient = rng.choice(self.patient_rows)
                department = patient.department if rng.random() < 0.9 else rng.randint(1, 100)
                vet = rng.choice(self.vets[department])
                reason = "Blood tests" if slot in lab_slots else "Vaccination"
                consultation = self.consultation(patient, department, vet, at, "closed", reason)
                last = (patient, department, consultation, vet)
            if slot in lab_slots:
                status = "cancelled" if rng.random() < CANCELLED_SHARE else "complete"
                self.referral(
                    patient=patient,
                    department=department,
                    consultation=consultation,
                    at=at,
                    codes=self.codes_for(patient),
                    status=status,
                    vet=vet,
                )
                made += 1
                if made % CHUNK == 0:
                    self.flush(*tables_in_order)
                    if made % (CHUNK * 4) == 0:
                        _log(f"referrals: {made} of {self.referrals}")
        self.flush(*tables_in_order)

        # The pages: department 1, one patient's visits with 1, 10 and 50 Chem 17s.
        patient = self.by_department[1][0]
        vet = self.vets[1][0]
        pages = {}
        for index, size in enumerate(PAGE_SIZES):
            at = ANCHOR - dt.timedelta(days=2, hours=3 * (len(PAGE_SIZES) - index))
            consultation = self.consultation(patient, 1, vet, at, "open", f"Bench page {size}")
            referral_ids = [
                self.referral(
                    patient=patient,
                    department=1,
                    consultation=consultation,
                    at=at + dt.timedelta(seconds=n),
                    codes=("CHEM17",),
                    status="complete",
                    vet=vet,
                )
                for n in range(size)
            ]
            pages[str(size)] = {"consultation": consultation, "referrals": referral_ids}
        self.special["pages"] = pages
        self.special["report_referral"] = pages[str(PAGE_SIZES[0])]["referrals"][0]
        self.flush(*tables_in_order)

        # The morning's backlog: every department has Chem 17s waiting for the plug-in
        # (queued) and for their results (sent), oldest first.
        morning = ANCHOR - dt.timedelta(hours=6)
        order = []
        for n in range(self.queued_per_dept + self.sent_per_dept):
            status = "sent" if n < self.sent_per_dept else "queued"
            order += [(dept, status) for dept in range(1, DEPARTMENTS + 1)]
        gap = dt.timedelta(hours=6) / len(order)
        for n, (department, status) in enumerate(order):
            at = morning + gap * n
            patient = rng.choice(self.by_department[department])
            vet = rng.choice(self.vets[department])
            consultation = self.consultation(patient, department, vet, at, "open", "Check-up")
            self.referral(
                patient=patient,
                department=department,
                consultation=consultation,
                at=at,
                codes=("CHEM17",),
                status=status,
                vet=vet,
            )
        self.flush(*tables_in_order)
        self.special["queued_per_department"] = self.queued_per_dept
        self.special["sent_per_department"] = self.sent_per_dept
        _log(f"referrals: {self.ids.counters['referral']} in all")


def _jsonb(value):
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _x(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _result_xml(referral, sent, instrument, set_id, run_text, values) -> bytes:
    """The result_20 file InterLink would have written for this run, as stored."""
    patient: PatientRow = referral["patient"]
    client, doctor = sent["client"], sent["doctor"]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE message SYSTEM "result_20.dtd">\n'
        f'<message message_id="1" message_dt="{run_text}" message_type="Result" '
        'message_sub_type="New_Results" message_dtd_version_number="2.0">\n'
        "  <header><from_application_id>ivls-bench</from_application_id>"
        "<to_application_id>pims-bench</to_application_id></header>\n  <body>\n"
        f'    <result requisition_number="{referral["number"]}" diagnostic_set_id="{set_id}" '
        f'instrument="{instrument}">\n      <run_dt>{run_text}</run_dt>\n'
        f'      <client client_id="{patient.client_id}"><first_name>'
        f"{_x(client['first_name'])}</first_name><last_name>{_x(client['last_name'])}"
        "</last_name></client>\n"
        f'      <patient patient_id="{patient.id}" patient_species="{patient.species}" '
        f'patient_gender="{patient.sex}">\n        <patient_name>{_x(patient.name)}'
        f"</patient_name>\n        <patient_breed>{_x(patient.breed)}</patient_breed>\n"
        f"        <patient_birth_dt>{patient.birth:%m/%d/%Y}</patient_birth_dt>\n"
        '        <patient_weight patient_weight_uom="kgs"><weight>'
        f"{patient.weight}</weight></patient_weight>\n      </patient>\n"
        f"      <doctor><first_name>{_x(doctor['first_name'])}</first_name>"
        f"<last_name>{_x(doctor['last_name'])}</last_name></doctor>\n      <results>\n"
    ]
    for code, unit, text, _n, low, high, crit_low, crit_high, _f in values:
        parts.append(
            f'        <assay_result assay_name="{_x(code)}">\n'
            f"          <result_value_uom_cd>{_x(unit)}</result_value_uom_cd>\n"
            f"          <result_value>{_x(text)}</result_value>\n"
            "          <assay_reference_range>\n"
            f"            <critical_low>{crit_low or ''}</critical_low>\n"
            f"            <low>{low or ''}</low>\n            <high>{high or ''}</high>\n"
            f"            <critical_high>{crit_high or ''}</critical_high>\n"
            "          </assay_reference_range>\n"
            "          <result_qualifier>=</result_qualifier>\n        </assay_result>\n"
        )
    parts.append("      </results>\n    </result>\n  </body>\n</message>\n")
    return "".join(parts).encode("utf-8")


# --------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------


def _admin(pg: cluster.Postgres):
    import psycopg

    return psycopg.connect(pg.dsn("postgres"), autocommit=True)


def template_exists(pg: cluster.Postgres) -> bool:
    with _admin(pg) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [cluster.TEMPLATE_DB]
            ).fetchone()
        )


def stamp_current() -> dict | None:
    try:
        stamp = json.loads(cluster.STAMP.read_text())
    except (OSError, ValueError):
        return None
    return stamp if stamp.get("version") == DATA_VERSION else None


def schema_migrations() -> list[str]:
    """The project's migrations on disk: a template built before a new one is rebuilt."""
    from django.db.migrations.loader import MigrationLoader

    project = {"pims", "patients", "billing", "labs", "integrations"}
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in loader.disk_migrations if app in project)


def build(pg: cluster.Postgres, scale: float) -> dict:
    import psycopg

    started = time.monotonic()
    with _admin(pg) as conn:
        conn.execute(
            "UPDATE pg_database SET datistemplate = false WHERE datname = %s",
            [cluster.TEMPLATE_DB],
        )
        conn.execute(f"DROP DATABASE IF EXISTS {cluster.TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {cluster.TEMPLATE_DB}")
    cluster.STAMP.unlink(missing_ok=True)

    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection

    _log("migrating the template database")
    call_command("migrate", verbosity=0, interactive=False)

    with psycopg.connect(pg.dsn(cluster.TEMPLATE_DB)) as conn:
        # The generator keeps every reference right; row-by-row FK checks would only
        # triple the load time.
        conn.execute("SET session_replication_role = replica")
        builder = Builder(conn, scale)
        builder.practice()
        builder.clients_and_patients()
        builder.referrals_all()
        conn.commit()
        counts = {name: table.count for name, table in builder.t.items()}
    _log("loaded; advancing sequences, then VACUUM ANALYZE")

    from django.apps import apps

    statements = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(
            "SELECT setval('labs_referral_number_seq', (SELECT max(number) FROM labs_referral))"
        )
    connection.close()
    with psycopg.connect(pg.dsn(cluster.TEMPLATE_DB), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = size.fetchone()[0]
    with _admin(pg) as conn:
        conn.execute(f"ALTER DATABASE {cluster.TEMPLATE_DB} WITH IS_TEMPLATE true")
    if scale >= 1 and counts["result"] < MIN_RESULTS:
        raise SystemExit(f"only {counts['result']} results generated; expected {MIN_RESULTS}")
    stamp = {
        "version": DATA_VERSION,
        "seed": SEED,
        "scale": scale,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1),
        "database_size": size,
        "migrations": schema_migrations(),
        "counts": counts,
        **builder.special,
    }
    cluster.STAMP.write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.data", description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="size factor (1 = the full practice)"
    )
    args = parser.parse_args(argv)
    cluster.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    pg = cluster.Postgres()
    pg.start(cluster.PG_LOAD_OPTIONS)
    try:
        os.environ.update(cluster.pims_environment(database_url=pg.url(cluster.TEMPLATE_DB)))
        import django

        django.setup()
        stamp = stamp_current()
        if (
            not args.force
            and stamp
            and stamp.get("scale") == args.scale
            and stamp.get("migrations") == schema_migrations()
            and template_exists(pg)
        ):
            print(
                f"The benchmark data is current (built {stamp['built_at']}, "
                f"{stamp['counts']['result']} results); --force rebuilds it."
            )
            return 0
        _log(f"building the template on 127.0.0.1:{pg.port} (scale {args.scale})")
        stamp = build(pg, args.scale)
        counts = stamp["counts"]
        print(
            f"Built {cluster.TEMPLATE_DB} in {stamp['build_seconds']} s "
            f"({stamp['database_size']}): {DEPARTMENTS} departments, "
            f"{counts['patient']} patients, {counts['referral']} referrals, "
            f"{counts['result']} results, {counts['work_request']} work requests."
        )
        return 0
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
