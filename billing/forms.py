import datetime as dt
from decimal import Decimal

from django import forms
from django.utils import timezone

from billing.models import Item, Payment


def _money_field(label: str, **kwargs) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        **kwargs,
    )


class InvoiceLineForm(forms.Form):
    description = forms.CharField(max_length=200)
    quantity = forms.DecimalField(
        max_digits=10,
        decimal_places=3,
        min_value=Decimal("0.001"),
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    unit_price = _money_field("Unit price", min_value=Decimal("0"))
    vat_rate = forms.DecimalField(
        label="VAT %",
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("99.99"),
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )

    def __init__(self, *args, form_id: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if form_id:
            # The inputs sit in table cells; the <form> they belong to is outside the table.
            for field in self.fields.values():
                field.widget.attrs["form"] = form_id


class InvoiceLineAddForm(forms.Form):
    item = forms.ModelChoiceField(queryset=Item.objects.none(), label="Item")
    quantity = forms.DecimalField(
        max_digits=10,
        decimal_places=3,
        min_value=Decimal("0.001"),
        initial=Decimal("1"),
        widget=forms.NumberInput(attrs={"step": "any"}),
    )

    def __init__(self, *args, item_list_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["item"].queryset = Item.objects.filter(
            item_list_id=item_list_id, active=True
        ).order_by("name", "id")


class PaymentForm(forms.Form):
    amount = _money_field("Amount", min_value=Decimal("0.01"))
    method = forms.ChoiceField(choices=Payment.METHODS, initial=Payment.METHOD_CARD)
    paid_at = forms.DateTimeField(
        label="Paid at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for now.",
    )
    reference = forms.CharField(max_length=100, required=False)

    def clean_paid_at(self):
        paid_at = self.cleaned_data.get("paid_at")
        if paid_at and paid_at > timezone.now() + dt.timedelta(minutes=5):
            raise forms.ValidationError("A payment cannot be in the future.")
        return paid_at


class RefundForm(forms.Form):
    amount = _money_field("Amount to refund", min_value=Decimal("0.01"))
    reason = forms.CharField(max_length=300)


class CreditForm(forms.Form):
    reason = forms.CharField(max_length=300)
    release_lines = forms.BooleanField(
        required=False,
        label="Put the charges back on the consultation, to invoice them again corrected",
    )


class PaymentPlanForm(forms.Form):
    count = forms.IntegerField(label="Number of instalments", min_value=1, max_value=60, initial=3)
    first_due = forms.DateField(
        label="First instalment due", widget=forms.DateInput(attrs={"type": "date"})
    )
    months_between = forms.IntegerField(
        label="Months between instalments", min_value=1, max_value=12, initial=1
    )
    note = forms.CharField(max_length=300, required=False)


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The period ends before it starts.")
        if start and end and (end - start).days > 3 * 366:
            raise forms.ValidationError("Choose a period of at most three years.")
        return data
