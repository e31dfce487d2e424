"""Signed-in back-office clients: a viewer, an operator (roles.apply_roles, as sign-in does) and
a superuser (createsuperuser), each a Django test client with its own session."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client

from backend.backoffice.roles import OPERATOR, VIEWER, apply_roles
from backend.commands import customers
from backend.commands.models import SmsNotification, SmsStatus
from backend.commands.orders import PlaceOrder, place_order
from backend.projections import set_sms_status


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db) -> Client:
    user = User.objects.create_user("vera", password="unused-in-tests")
    apply_roles(user, [VIEWER])
    return signed_in(user)


@pytest.fixture
def operator(db) -> Client:
    user = User.objects.create_user("otto", password="unused-in-tests")
    apply_roles(user, [OPERATOR])
    return signed_in(user)


@pytest.fixture
def superuser(db) -> Client:
    user = User.objects.create_superuser("root", password="unused-in-tests")
    return signed_in(user)


def new_customer(code: str = "JANE", name: str = "Jane Wanjiru") -> int:
    return customers.create_customer(
        customers.CreateCustomer(name=name, code=code, phone_number="+254712345678")
    )


def new_order(customer_id: int, item: str = "Lamp") -> int:
    return place_order(PlaceOrder(customer_id=customer_id, item=item, amount=Decimal("40.00"))).id


def mark_failed(order_id: int, reason: str = "InvalidPhoneNumber") -> None:
    """What the worker records for a refused SMS, without running one (for screens and
    permissions; the resend tests use the real worker and gateway)."""
    SmsNotification.objects.filter(order_id=order_id).update(
        status=SmsStatus.FAILED, error_reason=reason, last_error=f"403 {reason}"
    )
    set_sms_status(order_id, SmsStatus.FAILED.value, reason)


def audit(**filters: object) -> list[LogEntry]:
    return list(LogEntry.objects.filter(**filters).order_by("id"))


def messages_of(response) -> list[str]:
    """The one-time messages a followed redirect showed."""
    return [str(m) for m in response.context["messages"]]


def page_text(response) -> str:
    """The page's text without tags, to assert on what a person reads."""
    return re.sub(r"<[^>]+>", " ", response.content.decode())
