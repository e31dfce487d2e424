"""What migration 0006 leaves of `sms_notifications` (docs/performance.md, "Decisions in force", 11): the
gateway id still unique, without the LIKE index nothing uses, and pages with room for HOT updates."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from backend.commands.models import SmsNotification
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db


def _postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")


def test_the_gateway_id_is_unique_without_a_like_index():
    _postgres()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'sms_notifications'")
        indexes = [definition for (definition,) in cursor.fetchall()]
    assert not [d for d in indexes if "pattern_ops" in d], indexes
    assert [d for d in indexes if "UNIQUE" in d and "(gateway_message_id)" in d], indexes
    customer = make_customer()
    first, second = make_order(customer), make_order(customer)
    SmsNotification.objects.filter(order_id=first).update(gateway_message_id="ATXid_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        SmsNotification.objects.filter(order_id=second).update(gateway_message_id="ATXid_1")


def test_pages_leave_room_for_hot_updates():
    _postgres()
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'sms_notifications'")
        [(options,)] = cursor.fetchall()
    assert "fillfactor=80" in options
