from django import forms
from django.utils import timezone

from patients.models import Client, Consultation, Patient, WeightMeasurement


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["first_name", "last_name", "phone", "email", "address", "postal_code", "city"]


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["name", "species", "breed", "sex", "birth_date", "microchip", "deceased"]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_birth_date(self):
        value = self.cleaned_data.get("birth_date")
        if value and value > timezone.localdate():
            raise forms.ValidationError("The birth date cannot be in the future.")
        return value


class WeightForm(forms.ModelForm):
    class Meta:
        model = WeightMeasurement
        fields = ["value", "unit"]
        labels = {"value": "Weight"}
        widgets = {"value": forms.NumberInput(attrs={"step": "0.01", "min": "0"})}

    def clean_value(self):
        value = self.cleaned_data["value"]
        if value is not None and value <= 0:
            raise forms.ValidationError("Enter a weight above zero.")
        return value


class ConsultationStartForm(forms.ModelForm):
    class Meta:
        model = Consultation
        fields = ["reason"]
        labels = {"reason": "Reason for the visit"}
