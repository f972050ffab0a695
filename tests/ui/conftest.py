import pytest
from django.test import Client as HttpClient

from pims.models import Membership
from tests.factories import (
    ConsultationFactory,
    DepartmentFactory,
    MembershipFactory,
    PatientFactory,
    UserFactory,
    WeightFactory,
)
from tests.ui.helpers import chem17_catalog


@pytest.fixture
def department(db):
    return DepartmentFactory(name="Helsinki Centre")


@pytest.fixture
def other_department(db):
    return DepartmentFactory(name="Espoo")


def member(department, role=Membership.ROLE_VET, **user_fields):
    user = UserFactory(**user_fields)
    MembershipFactory(user=user, department=department, role=role)
    return user


@pytest.fixture
def vet(department):
    return member(department, Membership.ROLE_VET, username="vet-a")


@pytest.fixture
def admin_user(department):
    return member(department, Membership.ROLE_ADMIN, username="admin-a")


def signed_in(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


@pytest.fixture
def vet_client(vet):
    return signed_in(vet)


@pytest.fixture
def admin_client_(admin_user):
    return signed_in(admin_user)


@pytest.fixture
def patient(db):
    patient = PatientFactory(name="Rosa", microchip="985112003456789")
    WeightFactory(patient=patient)
    return patient


@pytest.fixture
def consultation(department, patient, vet):
    return ConsultationFactory(department=department, patient=patient, vet=vet)


@pytest.fixture
def chem17(department):
    return chem17_catalog(department)
