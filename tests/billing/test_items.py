"""Item lists: the Code is unique within one list (a database constraint), blanks aside."""

import pytest
from django.db import IntegrityError, transaction

from billing.models import Item
from billing.selectors import item_by_code
from tests.factories import ItemFactory, ItemListFactory


def test_duplicate_code_in_one_item_list_is_refused_by_the_database(db):
    item_list = ItemListFactory()
    ItemFactory(item_list=item_list, code="SDMA")

    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(item_list=item_list, code="SDMA")

    assert Item.objects.filter(item_list=item_list, code="SDMA").count() == 1


def test_same_code_is_allowed_in_another_item_list(db):
    first, second = ItemListFactory(), ItemListFactory()
    ItemFactory(item_list=first, code="SDMA")

    ItemFactory(item_list=second, code="SDMA")

    assert Item.objects.filter(code="SDMA").count() == 2
    assert item_by_code(item_list=second, code="SDMA").item_list == second


def test_blank_codes_repeat_freely(db):
    item_list = ItemListFactory()

    for name in ("Nail clip", "Ear cleaning", "Consultation"):
        ItemFactory(item_list=item_list, code="", name=name, kind=Item.KIND_PROCEDURE)

    assert Item.objects.filter(item_list=item_list, code="").count() == 3
    assert item_by_code(item_list=item_list, code="") is None


def test_codes_differing_only_in_case_are_different_codes(db):
    item_list = ItemListFactory()
    ItemFactory(item_list=item_list, code="ALB", name="Albumin")
    ItemFactory(item_list=item_list, code="alb", name="Something else")

    assert item_by_code(item_list=item_list, code="ALB").name == "Albumin"
    assert item_by_code(item_list=item_list, code="alb").name == "Something else"
