"""A small practice to invoice: shared by the billing and document tests."""

from dataclasses import dataclass
from decimal import Decimal

from billing.models import ConsultationLine, Item
from billing.services import consultation_line_add
from patients.models import Client, Consultation
from pims.models import Department
from tests.factories import (
    ClientFactory,
    ConsultationFactory,
    DepartmentFactory,
    ItemFactory,
    ItemListFactory,
    MembershipFactory,
    PatientFactory,
    UserFactory,
    VatRateFactory,
)


@dataclass
class Practice:
    department: Department
    vet: object
    client: Client
    consultation: Consultation

    def item(self, name: str, price: str, *, rate: str = "25.50", kind=Item.KIND_PROCEDURE):
        return ItemFactory(
            item_list=self.department.item_list,
            kind=kind,
            name=name,
            code="",
            price=Decimal(price),
            vat_rate=VatRateFactory(name=f"VAT {rate}", rate=Decimal(rate)),
        )

    def charge(
        self, name: str, price: str, quantity: str = "1", *, rate: str = "25.50", consultation=None
    ) -> ConsultationLine:
        return consultation_line_add(
            consultation=consultation or self.consultation,
            item=self.item(name, price, rate=rate),
            quantity=Decimal(quantity),
            added_by=self.vet,
        )

    def visit(self, client: Client | None = None) -> Consultation:
        patient = PatientFactory(client=client or self.client, name="Musti", species="FELINE")
        return ConsultationFactory(patient=patient, department=self.department, vet=self.vet)


def practice(*, prices_include_vat: bool = True, name: str = "Kallio Animal Clinic") -> Practice:
    department = DepartmentFactory(
        name=name,
        address="Fleminginkatu 12, 00530 Helsinki",
        phone="+358 9 123 4567",
        email="kallio@example.org",
        time_zone="Europe/Helsinki",
        item_list=ItemListFactory(prices_include_vat=prices_include_vat),
    )
    vet = UserFactory(first_name="Anna", last_name="Korhonen")
    MembershipFactory(user=vet, department=department)
    client = ClientFactory(
        first_name="Maria",
        last_name="Virtanen",
        address="Porthaninkatu 3 A 5",
        postal_code="00530",
        city="Helsinki",
    )
    patient = PatientFactory(client=client, name="Rosa")
    consultation = ConsultationFactory(patient=patient, department=department, vet=vet)
    return Practice(department, vet, client, consultation)
