"""Every back-office change is an admin LogEntry (who, what, when), shown in the object's History
and in the read-only audit log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from backend.backoffice.roles import OPERATOR, ROLE_PERMISSIONS, VIEWER
from tests.backoffice.conftest import mark_failed, new_customer, new_order, page_text

AUDIT = "/admin/backoffice/auditentry/"


@pytest.mark.django_db
def test_changes_are_listed_with_who_what_and_when_for_a_viewer(operator: Client, viewer: Client):
    order_id = new_order(new_customer("JANE", "Jane Wanjiru"))
    mark_failed(order_id)
    operator.post(
        "/admin/backoffice/order/", {"action": "resend_sms", "_selected_action": [order_id]}
    )
    operator.post(
        "/admin/backoffice/customer/add/",
        {"name": "Otieno", "code": "OTI", "phone_number": "+254712345679"},
    )

    listing = page_text(viewer.get(AUDIT))
    history = page_text(viewer.get(f"/admin/backoffice/order/{order_id}/history/"))

    assert "otto" in listing
    assert "Sent the SMS again." in listing
    assert "OTI (Otieno)" in listing and "Added." in listing
    assert "Sent the SMS again." in history and "otto" in history
    entry = LogEntry.objects.get(object_id=str(order_id))
    detail = page_text(viewer.get(f"{AUDIT}{entry.pk}/change/"))
    assert "Sent the SMS again." in detail and "otto" in detail


@pytest.mark.django_db
def test_the_audit_log_cannot_be_edited_or_deleted_even_by_a_superuser(operator, superuser):
    operator.post(
        "/admin/backoffice/customer/add/",
        {"name": "Otieno", "code": "OTI", "phone_number": "+254712345679"},
    )
    entry = LogEntry.objects.get()

    listing = superuser.get(AUDIT)
    change = superuser.post(f"{AUDIT}{entry.pk}/change/", {"change_message": "nothing"})
    delete = superuser.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"})
    action = superuser.post(
        AUDIT, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )

    assert b'name="action"' not in listing.content
    assert (change.status_code, delete.status_code) == (403, 403)
    assert action.status_code in {200, 302}
    assert LogEntry.objects.get().change_message == entry.change_message


@pytest.mark.django_db(transaction=True)
def test_the_role_groups_come_back_after_a_flush():
    """post_migrate keeps them (a data migration's rows would be gone after a
    TransactionTestCase flush, e.g. before a live-server browser test)."""
    call_command("flush", interactive=False, verbosity=0)

    for role in (VIEWER, OPERATOR):
        group = Group.objects.get(name=role)
        held = set(group.permissions.values_list("content_type__app_label", "codename"))
        assert held == ROLE_PERMISSIONS[role]
