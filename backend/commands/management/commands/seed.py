from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.commands.seeding import seed


class Command(BaseCommand):
    help = (
        "Load bulk demo customers and orders (no SMS is sent); read models are rebuilt afterwards."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--customers", type=int, default=100, help="new customers to create")
        parser.add_argument(
            "--orders", type=int, default=1000, help="orders spread over the new customers"
        )

    def handle(self, *args: Any, customers: int, orders: int, **options: Any) -> None:
        if customers < 0 or orders < 0:
            raise CommandError("--customers and --orders must not be negative")
        if orders and not customers:
            raise CommandError("--orders needs --customers of at least 1")
        started = time.monotonic()
        n_customers, n_orders = seed(customers=customers, orders=orders)
        self.stdout.write(
            f"seeded {n_customers} customers and {n_orders} orders in {time.monotonic() - started:.1f} s"
        )
