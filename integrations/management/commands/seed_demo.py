"""A deterministic demo practice: two departments sharing one IVLS, the IDEXX catalogue,
clients with dogs and cats, and referrals in every state.

It lives in integrations because it seeds every app, and integrations is the one app that
may import all the others. Running it again changes nothing.
"""

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management import color
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from billing.catalog import load_catalog
from billing.models import BillingSettings, Item, ItemList, VatRate
from integrations.ivls.models import WorkRequest
from integrations.ivls.services import connection_configure
from labs import state
from labs.models import LabPanel, Referral
from labs.rundata import RUN_NEW, RUN_REPLACE, AssayData, RunData
from labs.services import referral_cancel, referral_create, result_record, run_record
from patients.models import Client, Consultation, Patient, WeightMeasurement
from pims import demo
from pims.models import Department, Membership

TIME_ZONE = "Europe/Helsinki"
# Fixed dates keep the demo the same wherever and whenever it is seeded.
ANCHOR = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)

STAFF = [
    # username, first, last, role, department
    ("vet1", "Anna", "Korhonen", Membership.ROLE_VET, 1),
    ("nurse1", "Mikko", "Laine", Membership.ROLE_NURSE, 1),
    ("admin1", "Sari", "Nieminen", Membership.ROLE_ADMIN, 1),
    ("vet2", "Juha", "Mäkinen", Membership.ROLE_VET, 2),
    ("nurse2", "Laura", "Heikkinen", Membership.ROLE_NURSE, 2),
    ("admin2", "Pekka", "Koskinen", Membership.ROLE_ADMIN, 2),
]

CLIENTS = [
    # first, last, phone, email, city, [(patient, species, breed, sex, birth, weights kg)]
    (
        "Maria",
        "Virtanen",
        "+358 40 111 2233",
        "maria.virtanen@example.org",
        "Helsinki",
        [("Rosa", "CANINE", "Labrador Retriever", "FEMALE_SPAYED", "2019-03-14", [26.8, 27.4])],
    ),
    (
        "Jari",
        "Lehtonen",
        "+358 50 222 3344",
        "jari.lehtonen@example.org",
        "Espoo",
        [
            ("Musti", "CANINE", "Finnish Lapphund", "MALE_NEUTERED", "2016-06-02", [18.9, 19.3]),
            ("Mirri", "FELINE", "European Shorthair", "FEMALE_SPAYED", "2014-09-21", [4.1, 3.9]),
        ],
    ),
    (
        "Aino",
        "Salminen",
        "+358 44 333 4455",
        "aino.salminen@example.org",
        "Vantaa",
        [("Nala", "FELINE", "Maine Coon", "FEMALE_INTACT", "2021-01-11", [5.6, 5.8])],
    ),
    (
        "Olli",
        "Järvinen",
        "+358 40 444 5566",
        "olli.jarvinen@example.org",
        "Helsinki",
        [("Hugo", "CANINE", "German Shepherd", "MALE_INTACT", "2018-11-30", [34.0, 35.2])],
    ),
    (
        "Elina",
        "Hämäläinen",
        "+358 50 555 6677",
        "elina.hamalainen@example.org",
        "Helsinki",
        [("Pilvi", "FELINE", "Ragdoll", "FEMALE_SPAYED", "2012-04-08", [4.8, 4.5])],
    ),
    (
        "Ville",
        "Rantanen",
        "+358 44 666 7788",
        "ville.rantanen@example.org",
        "Espoo",
        [("Rekku", "CANINE", "Border Collie", "MALE_NEUTERED", "2020-07-19", [19.5, 20.1])],
    ),
    (
        "Satu",
        "Ahonen",
        "+358 40 777 8899",
        "satu.ahonen@example.org",
        "Kauniainen",
        [("Tassu", "FELINE", "Siamese", "MALE_NEUTERED", "2017-02-27", [4.9, 5.0])],
    ),
    (
        "Kari",
        "O'Brien & Sons",
        "+358 50 888 9900",
        "kari.obrien@example.org",
        "Helsinki",
        [("Bella", "CANINE", "Golden Retriever", "FEMALE_SPAYED", "2015-05-05", [29.9, 30.4])],
    ),
    (
        "Li",
        "Wei 李",
        "+358 44 999 0011",
        "li.wei@example.org",
        "Vantaa",
        [("小白", "CANINE", "Shiba Inu", "MALE_INTACT", "2022-08-08", [9.8, 10.2])],
    ),
    (
        "Helmi",
        "Mattila",
        "+358 40 121 3434",
        "helmi.mattila@example.org",
        "Helsinki",
        [("Nöpö", "LAGOMORPH", "Dwarf Lop", "FEMALE_INTACT", "2023-03-03", [1.6, 1.7])],
    ),
    (
        "Timo",
        "Laitinen",
        "+358 50 232 4545",
        "timo.laitinen@example.org",
        "Espoo",
        [
            ("Karvis", "CANINE", "Mixed breed", "MALE_NEUTERED", "2013-12-24", [22.1, 21.4]),
            ("Misu", "FELINE", "Norwegian Forest Cat", "FEMALE_SPAYED", "2019-10-10", [5.2, 5.3]),
        ],
    ),
    (
        "Noora",
        "Kallio",
        "+358 44 343 5656",
        "noora.kallio@example.org",
        "Helsinki",
        [("Lumi", "CANINE", "Samoyed", "FEMALE_INTACT", "2021-06-15", [21.0, 21.8])],
    ),
]

PANELS = [
    ("Chem 17 + Lyte 4", "PNL-CHEMLYTE", ["CHEM17", "LYTE4"]),
    ("Pre-anaesthetic", "PNL-PREANAES", ["CHEM10", "CBC"]),
    ("Senior wellness", "PNL-SENIOR", ["CHEM17", "LYTE4", "CBC", "SDMA", "TT4"]),
]

OTHER_ITEMS = [
    (Item.KIND_PROCEDURE, "Consultation fee", "CONS", "55.00"),
    (Item.KIND_PROCEDURE, "Vaccination (DHPPi + L4)", "VACC-DOG", "48.00"),
    (Item.KIND_PROCEDURE, "Vaccination (feline RCP)", "VACC-CAT", "44.00"),
    (Item.KIND_MEDICINE, "Meloxicam 1.5 mg/ml oral suspension, 10 ml", "MEL10", "16.90"),
    (Item.KIND_SUPPLY, "Blood sample tube set", "TUBES", "4.50"),
]


class Command(BaseCommand):
    help = "Create the demo practice (idempotent) and print its logins and IVLS password."

    def handle(self, *args, **options):
        if Department.objects.filter(pk=1, name="Kallio Animal Clinic").exists():
            self.stdout.write("The demo practice is already there.")
        else:
            with transaction.atomic():
                self._seed()
            self.stdout.write(self.style.SUCCESS("Created the demo practice."))
        self._print_logins()

    def _print_logins(self):
        self.stdout.write(
            f"\nDemo logins (password for each: {demo.DEMO_USER_PASSWORD})\n"
            "  department 1, Kallio Animal Clinic:  vet1  nurse1  admin1\n"
            "  department 2, Töölö Animal Hospital: vet2  nurse2  admin2\n"
            "  Django admin (/admin/): superadmin\n"
            f"IVLS plug-in: Unit ID {demo.DEMO_UNITS}  password {demo.DEMO_IVLS_PASSWORD}\n"
        )

    # --- building ------------------------------------------------------------------------
    def _seed(self):
        vat = VatRate.objects.create(name="Standard", rate=Decimal("25.50"))
        vat_medicine = VatRate.objects.create(name="Medicines", rate=Decimal("14.00"))
        item_list = ItemList.objects.create(name="Practice price list", prices_include_vat=True)
        departments = [
            Department.objects.create(
                pk=1,
                name="Kallio Animal Clinic",
                time_zone=TIME_ZONE,
                weight_unit="kg",
                item_list=item_list,
                address="Helsinginkatu 12, 00500 Helsinki",
                phone="+358 9 123 4567",
                email="kallio@example.org",
            ),
            Department.objects.create(
                pk=2,
                name="Töölö Animal Hospital",
                time_zone=TIME_ZONE,
                weight_unit="kg",
                item_list=item_list,
                address="Runeberginkatu 40, 00260 Helsinki",
                phone="+358 9 765 4321",
                email="toolo@example.org",
            ),
        ]
        self._reset_sequences()
        for department in departments:
            BillingSettings.objects.create(department=department)
            connection_configure(
                department=department, enabled=True, password=demo.DEMO_IVLS_PASSWORD
            )
        users = self._staff(departments)
        items = self._catalogue(item_list, vat, vat_medicine)
        for name, code, codes in PANELS:
            panel = LabPanel.objects.create(item_list=item_list, name=name, code=code)
            panel.items.set([items[c] for c in codes])
        patients = self._clients_and_patients(users["vet1"])
        self._referrals(departments, users, items, patients)

    def _reset_sequences(self):
        statements = connection.ops.sequence_reset_sql(color.no_style(), [Department])
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _staff(self, departments):
        user_model = get_user_model()
        users = {}
        for username, first, last, role, dept in STAFF:
            user = user_model.objects.create_user(
                username=username,
                password=demo.DEMO_USER_PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@example.org",
            )
            Membership.objects.create(user=user, department=departments[dept - 1], role=role)
            users[username] = user
        admin = user_model.objects.create_superuser(
            username="superadmin",
            password=demo.DEMO_USER_PASSWORD,
            email="superadmin@example.org",
        )
        users["superadmin"] = admin
        return users

    def _catalogue(self, item_list, vat, vat_medicine):
        items = {}
        for entry in load_catalog().values():
            ordering = entry.kind == "order"
            items[entry.code] = Item.objects.create(
                item_list=item_list,
                kind=Item.KIND_LAB,
                name=entry.name,
                code=entry.code,
                price=Decimal(entry.price or "0"),
                vat_rate=vat,
                is_ivls_analysis=ordering,
                yields=list(entry.yields),
                unit=entry.unit,
            )
        items["FECAL"] = Item.objects.create(
            item_list=item_list,
            kind=Item.KIND_LAB,
            name="Faecal flotation (in-house, by hand)",
            code="FECAL",
            price=Decimal("28.00"),
            vat_rate=vat,
        )
        for kind, name, code, price in OTHER_ITEMS:
            items[code] = Item.objects.create(
                item_list=item_list,
                kind=kind,
                name=name,
                code=code,
                price=Decimal(price),
                vat_rate=vat_medicine if kind == Item.KIND_MEDICINE else vat,
            )
        return items

    def _clients_and_patients(self, recorder):
        patients = []
        for index, (first, last, phone, email, city, animals) in enumerate(CLIENTS):
            client = Client.objects.create(
                first_name=first,
                last_name=last,
                phone=phone,
                email=email,
                city=city,
                address=f"Esimerkkitie {index + 1}",
                postal_code=f"00{100 + index * 10}",
                created_at=ANCHOR - dt.timedelta(days=400 - index),
            )
            for name, species, breed, sex, birth, weights in animals:
                patient = Patient.objects.create(
                    client=client,
                    name=name,
                    species=species,
                    breed=breed,
                    sex=sex,
                    birth_date=dt.date.fromisoformat(birth),
                    microchip=f"24600{index:03d}{len(patients):07d}",
                    created_at=client.created_at,
                )
                for months_ago, kg in zip((6, 0), weights, strict=True):
                    WeightMeasurement.objects.create(
                        patient=patient,
                        value=Decimal(str(kg)),
                        unit="kg",
                        measured_at=ANCHOR - dt.timedelta(days=30 * months_ago),
                        recorded_by=recorder,
                    )
                patients.append(patient)
        return patients

    def _consultation(self, patient, department, vet, day, reason, items):
        consultation = Consultation.objects.create(
            patient=patient,
            department=department,
            vet=vet,
            started_at=ANCHOR + dt.timedelta(days=day, hours=day % 5),
            reason=reason,
        )
        from billing.services import consultation_line_add

        consultation_line_add(consultation=consultation, item=items["CONS"], added_by=vet)
        return consultation

    def _referrals(self, departments, users, items, patients):
        d1, d2 = departments
        vet1, vet2, nurse1 = users["vet1"], users["vet2"], users["nurse1"]
        by_name = {p.name: p for p in patients}

        # open: hand-entered work only
        c = self._consultation(by_name["Nöpö"], d1, vet1, 0, "Soft stools", items)
        referral_create(consultation=c, items=[items["FECAL"]], created_by=vet1)

        # queued: waiting for the plug-in to pick it up
        c = self._consultation(by_name["Rosa"], d1, vet1, 1, "Annual check, drinks more", items)
        referral_create(consultation=c, items=[items["CHEM17"], items["SDMA"]], created_by=vet1)

        # sent: the plug-in acknowledged it
        c = self._consultation(by_name["Hugo"], d2, vet2, 1, "Lethargy", items)
        sent = referral_create(consultation=c, items=[items["CBC"]], created_by=vet2)
        self._acknowledge(sent)

        # cancelled before results
        c = self._consultation(by_name["Lumi"], d2, vet2, 2, "Pre-op bloods", items)
        cancelled = referral_create(
            consultation=c, panels=[LabPanel.objects.get(code="PNL-PREANAES")], created_by=vet2
        )
        referral_cancel(referral=cancelled, reason="Surgery postponed", cancelled_by=vet2)

        # complete: a senior wellness panel with every result back
        c = self._consultation(by_name["Pilvi"], d1, vet1, 3, "Senior wellness", items)
        complete = referral_create(
            consultation=c, panels=[LabPanel.objects.get(code="PNL-SENIOR")], created_by=vet1
        )
        self._acknowledge(complete)
        for index, code in enumerate(["CHEM17", "LYTE4", "CBC", "SDMA", "TT4"]):
            self._run(departments, complete, code, index, minutes=40 + index)

        # partial: the chemistry is back, the blood count is not
        c = self._consultation(by_name["Musti"], d1, vet1, 4, "Vomiting for two days", items)
        partial = referral_create(
            consultation=c, items=[items["CHEM17"], items["CBC"]], created_by=vet1
        )
        self._acknowledge(partial)
        self._run(departments, partial, "CHEM17", 7, minutes=35)

        # complete, with a corrected run: the analyser re-sent chemistry with a new glucose
        c = self._consultation(by_name["Mirri"], d1, vet1, 5, "Weight loss", items)
        corrected = referral_create(
            consultation=c, items=[items["CHEM10"], items["FECAL"]], created_by=vet1
        )
        self._acknowledge(corrected)
        self._run(departments, corrected, "CHEM10", 11, minutes=30)
        self._run(departments, corrected, "CHEM10", 11, minutes=30, correct={"GLU": "312"})
        line = corrected.lines.get(item=items["FECAL"])
        result_record(line=line, value="Negative", entered_by=nurse1)

        # a run started on the IVLS itself: waits in the review queue of both departments
        run_record(
            departments=departments,
            run=RunData(
                run_id="20261121_101500_3",
                instrument="SNAP",
                run_time=dt.datetime(2026, 11, 21, 10, 15),  # noqa: DTZ001 - wall time
                run_time_text="11/21/2026 10:15:00.000 AM",
                patient_name="Rekku",
                species="CANINE",
                assays=(
                    AssayData(code="HW", value_text="Negative", qualifier="="),
                    AssayData(code="Ehrlichia", value_text="Negative", qualifier="="),
                    AssayData(code="Lyme", value_text="Positive", qualifier="="),
                    AssayData(code="Anaplasma", value_text="Negative", qualifier="="),
                ),
            ),
        )

    def _acknowledge(self, referral: Referral):
        WorkRequest.objects.filter(referral=referral, delivered_at__isnull=True).update(
            delivered_at=timezone.now()
        )
        state.referral_transition(
            referral=referral, event=state.EVENT_ACKNOWLEDGED, actor_type="plugin"
        )

    def _run(self, departments, referral, code, seed, *, minutes, correct=None):
        """A deterministic analyser run for one ordering code of the referral."""
        catalogue = load_catalog()
        entry = catalogue[code]
        patient = referral.consultation.patient
        analytes = [catalogue[c] for c in entry.yields] if entry.yields else [entry]
        assays = []
        for position, analyte in enumerate(analytes):
            low, high = analyte.reference_range(patient.species)
            value = _demo_value(low, high, seed + position)
            if correct and analyte.code in correct:
                value = correct[analyte.code]
            assays.append(
                AssayData(
                    code=analyte.code,
                    value_text=value,
                    value_number=Decimal(value) if value else None,
                    unit=analyte.unit,
                    low=Decimal(low) if low else None,
                    high=Decimal(high) if high else None,
                    critical_low=Decimal(analyte.critical_low) if analyte.critical_low else None,
                    critical_high=(
                        Decimal(analyte.critical_high) if analyte.critical_high else None
                    ),
                    qualifier="=",
                )
            )
        started = timezone.localtime(referral.created_at, referral.department.zone)
        wall = (started + dt.timedelta(minutes=minutes)).replace(tzinfo=None)
        run_record(
            departments=departments,
            run=RunData(
                run_id=f"{wall:%Y%m%d_%H%M%S}_{referral.number % 1000}{seed}",
                instrument=entry.instrument,
                kind=RUN_REPLACE if correct else RUN_NEW,
                requisition_number=str(referral.number),
                run_time=wall,
                run_time_text=wall.strftime("%m/%d/%Y %I:%M:%S.000 %p"),
                client_id=str(patient.client_id),
                client_first_name=patient.client.first_name,
                client_last_name=patient.client.last_name,
                patient_id=str(patient.pk),
                patient_name=patient.name,
                species=patient.species,
                gender=patient.sex,
                assays=tuple(assays),
                notes=("Sample: serum, slight haemolysis.",) if code == "CHEM17" else (),
            ),
        )


def _demo_value(low: str, high: str, seed: int) -> str:
    """A value inside the range, or just outside it for every fifth analyte."""
    if not low or not high:
        return str(1 + seed % 7)
    lo, hi = Decimal(low), Decimal(high)
    places = max(len(low.partition(".")[2]), len(high.partition(".")[2]))
    quantum = Decimal(1).scaleb(-places)
    step = (hi - lo) / 10
    if seed % 5 == 4:
        value = hi + step * 2
    elif seed % 11 == 3:
        value = lo - step
    else:
        value = lo + step * (2 + seed % 7)
    return str(value.quantize(quantum))
