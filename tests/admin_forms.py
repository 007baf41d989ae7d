"""Posting the admin's change forms as a browser would."""

from typing import Any

from django import forms
from django.test import Client
from django.urls import reverse


def admin_change(client: Client, row: Any, **changes: str) -> Any:
    """Post a row's admin change form with every field as the form shows it, some of them changed."""
    url = reverse(f"admin:generation_{row._meta.model_name}_change", args=[row.pk])
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        else:  # a JSON field's value is JSON text already (BoundField.value() encodes it)
            data[name] = "" if value is None else value
    return client.post(url, data | changes, follow=True)
