"""Lab panels of an item list, as the admin keeps them. (The items themselves are billing's:
``billing.services.item_create`` and ``item_update``.)"""

from django.core.exceptions import ValidationError
from django.db import transaction

from billing.models import Item, ItemList
from labs.models import LabPanel
from pims.models import Department
from pims.services import audit_event_write, fields_apply, row_locked

PANEL_FIELDS = ("name", "code", "items")


def _checked_items(item_list_id: int, items) -> list[Item]:
    items = list(items)
    strangers = [
        item.name
        for item in items
        if item.item_list_id != item_list_id or item.kind != Item.KIND_LAB
    ]
    if strangers:
        raise ValidationError(f"Not lab items of the panel's item list: {', '.join(strangers)}.")
    return items


def _panel_apply(panel: LabPanel, changes: dict, current_item_ids: set[int]) -> list[str]:
    """Set name and code on ``panel``; the names of the fields (items included) that change."""
    fields = {name: value for name, value in changes.items() if name != "items"}
    changed = fields_apply(panel, PANEL_FIELDS, fields)
    if "items" in changes and {item.pk for item in changes["items"]} != current_item_ids:
        changed.append("items")
    return changed


@transaction.atomic
def panel_create(
    *,
    item_list: ItemList,
    name: str,
    code: str = "",
    items=(),
    created_by,
    department: Department | None = None,
) -> LabPanel:
    """A panel of lab items of ``item_list``. The audit event names the fields set."""
    items = _checked_items(item_list.pk, items)
    panel = LabPanel(item_list=item_list)
    changed = _panel_apply(panel, {"name": name, "code": code, "items": items}, set())
    panel.save()
    panel.items.set(items)
    audit_event_write(
        action="panel.created",
        department=department,
        actor_user=created_by,
        subject=panel,
        data={"fields": changed},
    )
    return panel


@transaction.atomic
def panel_update(
    *, panel: LabPanel, updated_by, department: Department | None = None, **changes
) -> LabPanel:
    """Change the name, code or items (the whole set) of a panel."""
    # Diffed against the stored row, locked: the caller's object may already carry the new
    # values (a bound ModelForm writes them onto its instance while it validates).
    panel = row_locked(panel)
    if "items" in changes:
        changes["items"] = _checked_items(panel.item_list_id, changes["items"])
    current = set(panel.items.values_list("pk", flat=True))
    changed = _panel_apply(panel, changes, current)
    panel.save()
    if "items" in changes:
        panel.items.set(changes["items"])
    audit_event_write(
        action="panel.changed",
        department=department,
        actor_user=updated_by,
        subject=panel,
        data={"fields": changed},
    )
    return panel
