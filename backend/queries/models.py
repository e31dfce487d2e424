"""Projection tables: denormalised read models, kept exact in each command's transaction."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models.functions import Lower


class CustomerView(models.Model):
    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=32)
    phone_number = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    order_count = models.BigIntegerField(default=0)
    total_amount = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))
    last_order_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "customer_view"
        indexes = [models.Index(Lower("code"), name="customer_view_code_idx")]

    def __str__(self) -> str:
        return self.code


class OrderView(models.Model):
    id = models.BigIntegerField(primary_key=True)
    customer_id = models.BigIntegerField()
    customer_code = models.CharField(max_length=32)
    customer_name = models.CharField(max_length=200)
    item = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.CharField(max_length=500, null=True)  # noqa: DJ001 - null is the API's null
    time = models.DateTimeField()
    sms_status = models.CharField(max_length=16)
    sms_error = models.CharField(max_length=64, null=True)  # noqa: DJ001 - null is the API's null

    class Meta:
        db_table = "order_view"
        indexes = [
            # `?sms_status=failed` pages newest first at any depth, like the unfiltered list.
            models.Index(
                "sms_status",
                models.F("time").desc(),
                models.F("id").desc(),
                name="order_view_status_time_idx",
            ),
            models.Index(
                models.F("time").desc(), models.F("id").desc(), name="order_view_time_idx"
            ),
            models.Index(
                "customer_id",
                models.F("time").desc(),
                models.F("id").desc(),
                name="order_view_customer_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id}"
