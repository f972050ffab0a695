import re

from django import forms

from billing.models import Item
from labs.models import LabPanel


class ResultEntryForm(forms.Form):
    """A result typed in by hand for a line no analyser fills."""

    value = forms.CharField(label="Result", max_length=500)
    unit = forms.CharField(label="Unit", max_length=30, required=False)
    low = forms.DecimalField(label="Low", required=False, max_digits=20, decimal_places=6)
    high = forms.DecimalField(label="High", required=False, max_digits=20, decimal_places=6)

    def clean(self):
        data = super().clean()
        low, high = data.get("low"), data.get("high")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("The low end of the reference range is above the high end.")
        return data


class DismissForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300)


class CancelForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300, required=False)


_CODE_SPLIT = re.compile(r"[\s,;]+")


class LabItemForm(forms.ModelForm):
    """A lab item of the department's item list, as the admin keeps it."""

    yields_text = forms.CharField(
        label="Yields",
        required=False,
        help_text="For an ordering item (e.g. a Chem 17): the analyte Codes its runs produce, "
        "separated by spaces or commas. Case matters: ALB, Ca, BUN/CREA.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = Item
        fields = ["name", "code", "is_ivls_analysis", "price", "vat_rate", "unit", "active"]
        help_texts = {
            "code": "The Code the analyser uses (exactly, case matters); unique in the item list.",
            "is_ivls_analysis": "Ordering it sends a work request to the IDEXX VetLab Station.",
            "unit": "Unit suggested when a result is entered by hand.",
        }

    def __init__(self, *args, item_list=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.item_list = item_list
        if self.instance.pk:
            self.fields["yields_text"].initial = " ".join(self.instance.yields or [])

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        if code and self.item_list is not None:
            clash = Item.objects.filter(item_list=self.item_list, code=code)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError(f"Another item in this item list has the Code {code}.")
        return code

    def clean_yields_text(self):
        codes = [c for c in _CODE_SPLIT.split(self.cleaned_data.get("yields_text", "")) if c]
        return list(dict.fromkeys(codes))

    def clean(self):
        data = super().clean()
        if data.get("yields_text") and not data.get("is_ivls_analysis"):
            self.add_error(
                "yields_text", "Only an IVLS analysis yields analytes; tick IVLS analysis."
            )
        return data


class LabPanelForm(forms.ModelForm):
    class Meta:
        model = LabPanel
        fields = ["name", "code", "items"]
        widgets = {"items": forms.CheckboxSelectMultiple}

    def __init__(self, *args, item_list=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.item_list = item_list
        self.fields["items"].queryset = Item.objects.filter(
            item_list=item_list, kind=Item.KIND_LAB
        ).order_by("name", "id")
