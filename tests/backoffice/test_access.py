"""Who may enter the back-office and do what: roles, anonymous visitors, ADMIN_ENABLED."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import clear_url_caches

from backend.backoffice.roles import OPERATOR, ROLE_PERMISSIONS, VIEWER, apply_roles
from backend.commands.models import Customer, SmsNotification
from tests.backoffice.conftest import audit, mark_failed, new_customer, new_order

pytestmark = pytest.mark.django_db

ORDERS = "/admin/backoffice/order/"
CUSTOMERS = "/admin/backoffice/customer/"
SCREENS = [
    ORDERS,
    CUSTOMERS,
    "/admin/backoffice/webhookendpoint/",
    "/admin/backoffice/apiclient/",
    "/admin/backoffice/auditentry/",
]


@pytest.mark.parametrize("path", ["/admin/", *SCREENS])
def test_anonymous_visitors_are_sent_to_sign_in(client: Client, path: str):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_a_user_without_a_role_is_not_let_in(db):
    user = User.objects.create_user("nobody")
    apply_roles(user, ["employees"])  # a claim value that is not a role
    client = Client()
    client.force_login(user)

    assert client.get(ORDERS).status_code == 302  # to the login page: not staff


def test_apply_roles_makes_membership_exactly_the_roles(db):
    user = User.objects.create_user("ada")

    apply_roles(user, [VIEWER, OPERATOR, "employees"])
    user.refresh_from_db()
    assert user.is_staff
    assert sorted(user.groups.values_list("name", flat=True)) == [OPERATOR, VIEWER]

    apply_roles(user, [VIEWER])
    user.refresh_from_db()
    assert user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == [VIEWER]

    apply_roles(user, [])
    user.refresh_from_db()
    assert not user.is_staff
    assert not user.groups.exists()


def held(role: str) -> set[tuple[str, str]]:
    group = Group.objects.get(name=role)
    return set(group.permissions.values_list("content_type__app_label", "codename"))


def test_the_role_groups_hold_view_or_also_change_permissions(db):
    viewer, operator = held(VIEWER), held(OPERATOR)

    assert (viewer, operator) == (ROLE_PERMISSIONS[VIEWER], ROLE_PERMISSIONS[OPERATOR])
    assert {code.split("_", 1)[0] for _, code in viewer} == {"view"}
    assert ("backoffice", "view_auditentry") in viewer
    assert viewer < operator
    assert {("backoffice", "change_order"), ("backoffice", "delete_customer")} <= operator
    assert not [code for _, code in operator if "auditentry" in code and code != "view_auditentry"]


@pytest.mark.parametrize("path", SCREENS)
def test_a_viewer_sees_every_screen(viewer: Client, path: str):
    assert viewer.get(path).status_code == 200


def test_a_viewer_gets_no_actions_and_no_add_button(viewer: Client):
    orders = viewer.get(ORDERS)
    customers = viewer.get(CUSTOMERS)

    assert b'name="action"' not in orders.content
    assert b"resend_sms" not in orders.content
    assert f'href="{CUSTOMERS}add/"'.encode() not in customers.content


def test_a_viewer_cannot_change_or_run_actions(viewer: Client):
    customer_id = new_customer()
    order_id = new_order(customer_id)
    mark_failed(order_id)

    add = viewer.post(f"{CUSTOMERS}add/", {"name": "X", "code": "X", "phone_number": "0712345678"})
    change = viewer.post(
        f"{CUSTOMERS}{customer_id}/change/",
        {"name": "Changed", "code": "JANE", "phone_number": "+254712345678"},
    )
    delete = viewer.post(f"{CUSTOMERS}{customer_id}/delete/", {"post": "yes"})
    action = viewer.post(ORDERS, {"action": "resend_sms", "_selected_action": [order_id]})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert action.status_code in {200, 302}  # the list again, the action refused as unknown
    assert SmsNotification.objects.get(order_id=order_id).status == "failed"
    assert Customer.objects.get(pk=customer_id).name == "Jane Wanjiru"
    assert Customer.objects.count() == 1
    assert audit() == []


def test_an_operator_gets_the_actions_and_may_add(operator: Client):
    orders = operator.get(ORDERS)

    assert b'value="resend_sms"' in orders.content
    assert operator.get(f"{CUSTOMERS}add/").status_code == 200


def test_a_superuser_may_do_everything(superuser: Client):
    assert b'value="resend_sms"' in superuser.get(ORDERS).content
    assert superuser.get(f"{CUSTOMERS}add/").status_code == 200
    assert superuser.get("/admin/backoffice/apiclient/add/").status_code == 200


def test_oauth_toolkits_own_screens_are_not_offered(superuser: Client):
    """They would edit clients and tokens past backend/issuer/clients.py."""
    assert superuser.get("/admin/oauth2_provider/application/").status_code == 404


@pytest.fixture
def admin_disabled(settings):
    import backend.urls

    settings.ADMIN_ENABLED = False
    clear_url_caches()
    importlib.reload(backend.urls)
    yield
    settings.ADMIN_ENABLED = True
    importlib.reload(backend.urls)
    clear_url_caches()


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", ORDERS])
def test_admin_enabled_0_makes_admin_a_404_problem(client: Client, admin_disabled, path: str):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_admin_is_on_by_default(client: Client):
    assert client.get("/admin/login/").status_code == 200
