from django.urls import reverse

from billing.models import Item
from labs.models import LabPanel
from tests.factories import lab_item


def test_auto_created_items_come_first_and_are_marked(admin_client_, department, chem17):
    surprise = lab_item(department, "SDMA2", name="SDMA2", auto_created=True)
    html = admin_client_.get(reverse("labs:item_list")).content.decode()
    assert "1 item created by the analyser" in html
    first_row = html.index('<tr id="item-')
    assert html.index(f'<tr id="item-{surprise.pk}"') == first_row
    assert "new from analyser" in html


def test_admin_names_prices_and_sets_yields_of_an_item(admin_client_, department):
    item = lab_item(department, "X1", name="X1", auto_created=True)
    response = admin_client_.post(
        reverse("labs:item_edit", args=[item.pk]),
        {
            "name": "Catalyst Lyte 4",
            "code": "LYTE4",
            "is_ivls_analysis": "on",
            "price": "35.00",
            "unit": "",
            "active": "on",
            "yields_text": "Na K, Cl Na/K",
        },
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.name, item.code, str(item.price)) == ("Catalyst Lyte 4", "LYTE4", "35.00")
    assert item.is_ivls_analysis and item.yields == ["Na", "K", "Cl", "Na/K"]
    assert not item.auto_created


def test_code_must_be_unique_in_the_item_list(admin_client_, department):
    lab_item(department, "GLU", name="Glucose")
    response = admin_client_.post(
        reverse("labs:item_create"),
        {"name": "Glucose again", "code": "GLU", "price": "1.00", "active": "on"},
    )
    assert "Another item in this item list has the Code GLU." in response.content.decode()
    assert Item.objects.filter(code="GLU").count() == 1


def test_yields_need_the_ivls_checkbox(admin_client_, department):
    response = admin_client_.post(
        reverse("labs:item_create"),
        {"name": "Odd", "code": "ODD", "price": "1.00", "active": "on", "yields_text": "A B"},
    )
    assert "Only an IVLS analysis yields analytes" in response.content.decode()


def test_panel_is_created_with_its_items(admin_client_, department, chem17):
    order, analytes = chem17
    response = admin_client_.post(
        reverse("labs:panel_create"),
        {"name": "Senior screen", "code": "SENIOR", "items": [order.pk, analytes["GLU"].pk]},
    )
    assert response.status_code == 302
    panel = LabPanel.objects.get(name="Senior screen")
    assert set(panel.items.values_list("code", flat=True)) == {"CHEM17", "GLU"}
    assert panel.item_list == department.item_list
    html = admin_client_.get(reverse("labs:item_list")).content.decode()
    assert "Senior screen" in html


def test_items_of_another_item_list_cannot_be_edited(admin_client_, other_department):
    foreign = lab_item(other_department, "F1")
    assert admin_client_.get(reverse("labs:item_edit", args=[foreign.pk])).status_code == 404
