from decimal import Decimal

from billing.models import ConsultationLine, Item
from patients.models import Consultation


def consultation_line_add(
    *,
    consultation: Consultation,
    item: Item,
    quantity: Decimal = Decimal("1"),
    unit_price: Decimal | None = None,
    added_by=None,
) -> ConsultationLine:
    """Charge an item on a consultation, copying its name, price and VAT rate as of now.

    ``unit_price`` overrides the item's price (zero for an analyte its ordering line pays for).
    """
    return ConsultationLine.objects.create(
        consultation=consultation,
        item=item,
        description=item.name,
        quantity=quantity,
        unit_price=item.price if unit_price is None else unit_price,
        vat_rate=item.vat_rate.rate if item.vat_rate_id else Decimal("0"),
        added_by=added_by,
    )
