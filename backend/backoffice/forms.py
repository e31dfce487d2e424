"""The back-office's forms. They check input by the API's own rules (its pydantic schemas), so
the admin accepts exactly what the API accepts; the command handlers then do the writing."""

from __future__ import annotations

from typing import Any

from django import forms
from pydantic import ValidationError as PydanticError

from backend.api.schemas.customers import CustomerIn
from backend.backoffice.models import ApiClient, Customer
from backend.issuer.conf import API_SCOPES

CUSTOMER_FIELDS = ("name", "code", "phone_number")


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = CUSTOMER_FIELDS
        help_texts = {
            "code": "1-32 characters of A-Z, a-z, 0-9, _ and -; unique ignoring case.",
            "phone_number": "Any common notation; numbers without + use SMS_DEFAULT_REGION.",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            valid = CustomerIn.model_validate(
                {field: cleaned.get(field) for field in CUSTOMER_FIELDS}
            )
        except PydanticError as exc:
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else None
                self.add_error(field if field in self.fields else None, error["msg"])
            return cleaned
        cleaned.update(valid.model_dump())  # trimmed name, E.164 phone number
        code = cleaned["code"]
        taken = Customer.objects.filter(code__iexact=code).exclude(pk=self.instance.pk).exists()
        if taken:
            # The command re-checks inside its transaction; this gives the form a readable error.
            self.add_error("code", f"A customer with code {code!r} already exists.")
        return cleaned


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=list(API_SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the client's tokens may do.",
    )

    class Meta:
        model = ApiClient
        fields = ("name",)
        help_texts = {"name": "A label for the integration (shown in this list only)."}

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise forms.ValidationError("Name the client.")
        return name
