"""The item list's writes: items through billing's services, panels through labs'."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from billing.models import Item
from billing.services import item_create, item_update
from labs.services import panel_create, panel_update
from pims.models import AuditEvent, Membership
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory, lab_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def department():
    return DepartmentFactory()


@pytest.fixture
def admin(department):
    user = UserFactory()
    MembershipFactory(user=user, department=department, role=Membership.ROLE_ADMIN)
    return user


def test_item_edit_page_audits_the_fields_that_changed_and_clears_auto_created(department, admin):
    item = lab_item(department, "X1", name="X1", auto_created=True)
    http = HttpClient()
    http.force_login(admin)
    response = http.post(
        reverse("labs:item_edit", args=[item.pk]),
        {"name": "Lyte 4", "code": "X1", "price": "0.00", "active": "on", "yields_text": ""},
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.name == "Lyte 4" and not item.auto_created
    event = AuditEvent.objects.get(action="item.changed")
    assert event.data == {"fields": ["name"]} and event.department == department


def test_item_create_makes_a_lab_item_and_names_the_fields_set(department, admin):
    item = item_create(
        item_list=department.item_list,
        kind=Item.KIND_LAB,
        name="Chem 10",
        code="CHEM10",
        price=Decimal("89.00"),
        is_ivls_analysis=True,
        yields=["GLU", "BUN"],
        created_by=admin,
    )
    item.refresh_from_db()
    assert (item.kind, item.yields, item.auto_created) == (Item.KIND_LAB, ["GLU", "BUN"], False)
    assert AuditEvent.objects.get(action="item.created").data == {
        "fields": ["name", "code", "is_ivls_analysis", "price", "yields"]
    }


def test_a_code_clash_is_a_clear_error_from_the_database_constraint(department, admin):
    lab_item(department, "GLU", name="Glucose")
    other = lab_item(department, "BUN", name="Urea")
    with pytest.raises(ValidationError, match="Another item in this item list has the Code GLU"):
        item_create(
            item_list=department.item_list,
            kind=Item.KIND_LAB,
            name="G",
            code="GLU",
            created_by=admin,
        )
    with pytest.raises(ValidationError, match="Code GLU"):
        item_update(item=other, code="GLU", updated_by=admin)
    assert Item.objects.filter(code="GLU").count() == 1
    assert not AuditEvent.objects.exists()


def test_panel_update_replaces_its_items_and_audits_the_change(department, admin):
    glu, bun, alt = (lab_item(department, code) for code in ("GLU", "BUN", "ALT"))
    panel = panel_create(
        item_list=department.item_list, name="Kidney", items=[glu, bun], created_by=admin
    )
    panel_update(panel=panel, name="Kidney", items=[bun, alt], updated_by=admin)
    assert set(panel.items.values_list("code", flat=True)) == {"BUN", "ALT"}
    events = list(AuditEvent.objects.filter(subject_id=str(panel.pk)).order_by("id"))
    assert [(e.action, e.data) for e in events] == [
        ("panel.created", {"fields": ["name", "items"]}),
        ("panel.changed", {"fields": ["items"]}),
    ]


def test_a_panel_takes_only_lab_items_of_its_own_item_list(department, admin):
    foreign = lab_item(DepartmentFactory(), "F1")
    with pytest.raises(ValidationError, match="F1"):
        panel_create(item_list=department.item_list, name="P", items=[foreign], created_by=admin)
    assert not department.item_list.panels.exists()
