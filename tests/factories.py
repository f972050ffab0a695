import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import BillingSettings, Item, ItemList, VatRate
from labs.models import LabPanel
from patients.models import Client, Consultation, Patient, WeightMeasurement
from pims.models import Department, Membership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Anna"
    last_name = "Korhonen"
    password = factory.django.Password("correct-horse-42")


class ItemListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ItemList

    name = factory.Sequence(lambda n: f"Item list {n}")
    prices_include_vat = True


class VatRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VatRate

    name = "Standard"
    rate = Decimal("25.50")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Clinic {n}")
    time_zone = "Europe/Helsinki"
    weight_unit = "kg"

    @factory.post_generation
    def item_list(self, create, extracted, **kwargs):
        if not create:
            return
        self.item_list = extracted or ItemListFactory()
        self.save(update_fields=["item_list"])
        BillingSettings.objects.create(department=self)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    department = factory.SubFactory(DepartmentFactory)
    role = Membership.ROLE_VET


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    item_list = factory.SubFactory(ItemListFactory)
    kind = Item.KIND_LAB
    name = factory.Sequence(lambda n: f"Lab test {n}")
    code = factory.Sequence(lambda n: f"T{n}")
    price = Decimal("30.00")
    is_ivls_analysis = False


class LabPanelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabPanel
        skip_postgeneration_save = True

    item_list = factory.SubFactory(ItemListFactory)
    name = factory.Sequence(lambda n: f"Panel {n}")

    @factory.post_generation
    def items(self, create, extracted, **kwargs):
        if create and extracted:
            self.items.set(extracted)


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    first_name = "Maria"
    last_name = factory.Sequence(lambda n: f"Virtanen{n}")
    phone = factory.Sequence(lambda n: f"+358 40 {n:07d}")
    email = factory.Sequence(lambda n: f"owner{n}@example.org")


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    client = factory.SubFactory(ClientFactory)
    name = "Rosa"
    species = "CANINE"
    breed = "Labrador Retriever"
    sex = "FEMALE_SPAYED"
    birth_date = dt.date(2019, 3, 14)


class WeightFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WeightMeasurement

    patient = factory.SubFactory(PatientFactory)
    value = Decimal("27.40")
    unit = "kg"
    measured_at = factory.LazyFunction(timezone.now)


class ConsultationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consultation

    patient = factory.SubFactory(PatientFactory)
    department = factory.SubFactory(DepartmentFactory)
    vet = factory.SubFactory(UserFactory)


def department_item_list(department: Department) -> ItemList:
    return department.item_list


def ivls_item(department: Department, code: str, *, yields=(), price="89.00", **kw) -> Item:
    """An IVLS analysis in the department's item list."""
    return ItemFactory(
        item_list=department_item_list(department),
        code=code,
        name=kw.pop("name", f"IVLS {code}"),
        price=Decimal(price),
        is_ivls_analysis=True,
        yields=list(yields),
        **kw,
    )


def lab_item(department: Department, code: str, *, price="0.00", **kw) -> Item:
    return ItemFactory(
        item_list=department_item_list(department),
        code=code,
        name=kw.pop("name", code),
        price=Decimal(price),
        **kw,
    )
