"""The one private API the back-office uses: ModelAdmin._changeform_view / _delete_view (Django is
bounded <5.3 in pyproject.toml). CustomerAdmin calls them to run without the transaction that
the public views wrap around a save, because a command handler's transaction is durable and may
not be nested. These tests fail when either half of that stops being true."""

from __future__ import annotations

import pytest
from django.contrib.admin import ModelAdmin
from django.test import Client

from backend.backoffice.admin import CustomerAdmin
from backend.commands.models import Customer

pytestmark = pytest.mark.django_db

DATA = {"name": "Otieno", "code": "OTI", "phone_number": "+254712345679"}


def test_the_admins_own_views_would_nest_the_handlers_durable_transaction(
    operator: Client, monkeypatch
):
    monkeypatch.setattr(CustomerAdmin, "changeform_view", ModelAdmin.changeform_view)

    with pytest.raises(RuntimeError, match="durable"):
        operator.post("/admin/backoffice/customer/add/", DATA)

    assert not Customer.objects.exists()


def test_the_private_views_the_override_calls_exist():
    for name in ("_changeform_view", "_delete_view"):
        assert callable(getattr(ModelAdmin, name, None)), name
