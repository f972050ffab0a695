from billing.models import BillingSettings, Item, ItemList
from pims.models import Department


def item_list_for_department(department: Department) -> ItemList | None:
    settings = (
        BillingSettings.objects.select_related("item_list").filter(department=department).first()
    )
    return settings.item_list if settings else None


def item_by_code(*, item_list: ItemList, code: str) -> Item | None:
    """The item with exactly this Code (case matters) in the item list."""
    if not code:
        return None
    return Item.objects.filter(item_list=item_list, code=code).first()
