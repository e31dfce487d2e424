from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from backend.projections import rebuild_all


class Command(BaseCommand):
    help = "Rebuild every projection (customer_view, order_view) from the write tables."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        customers, orders = rebuild_all()
        self.stdout.write(
            f"rebuilt {customers} customers and {orders} orders in {time.monotonic() - started:.1f} s"
        )
