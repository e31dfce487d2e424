import random
from decimal import Decimal

import pytest
from django.core.management import call_command
from model_bakery import baker

from backend.commands.customers import (
    DeleteCustomer,
    PatchCustomer,
    ReplaceCustomer,
    delete_customer,
    patch_customer,
    replace_customer,
)
from backend.commands.models import Order
from backend.errors import Conflict
from backend.projections import rebuild_all
from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db


def snapshot() -> tuple[list[tuple], list[tuple]]:
    customers = list(CustomerView.objects.order_by("id").values_list())
    orders = list(OrderView.objects.order_by("id").values_list())
    return customers, orders


def test_rebuild_equals_incremental_after_random_writes():
    rng = random.Random(20261127)
    ids: list[int] = []
    for step in range(300):
        action = rng.random()
        if action < 0.2 or not ids:
            ids.append(make_customer())
        elif action < 0.75:
            make_order(rng.choice(ids), amount=f"{rng.randint(1, 10**6)}.{rng.randint(0, 99):02d}")
        elif action < 0.85:
            cid = rng.choice(ids)
            patch_customer(PatchCustomer(customer_id=cid, name=f"Renamed {step}"))
        elif action < 0.92:
            cid = rng.choice(ids)
            replace_customer(
                ReplaceCustomer(
                    customer_id=cid, name=f"R{step}", code=f"R-{step}", phone_number="+254711000000"
                )
            )
        else:
            cid = rng.choice(ids)
            try:
                delete_customer(DeleteCustomer(customer_id=cid))
                ids.remove(cid)
            except Conflict:
                pass
    incremental = snapshot()
    assert len(incremental[1]) > 100
    rebuild_all()
    assert snapshot() == incremental


def test_rebuild_repairs_a_corrupted_projection():
    cid = make_customer()
    make_order(cid, amount="5.00")
    make_order(cid, amount="7.00")
    expected = snapshot()
    CustomerView.objects.filter(pk=cid).update(order_count=99, total_amount=Decimal("1"))
    OrderView.objects.all().delete()
    call_command("rebuild_read_models")
    assert snapshot() == expected


def test_rebuild_reads_rows_written_without_the_commands():
    customer = baker.make_recipe("tests.customer")
    baker.make(Order, customer=customer, amount=Decimal("2.50"), item="Tea", _quantity=3)
    rebuild_all()
    view = CustomerView.objects.get(pk=customer.pk)
    assert (view.order_count, view.total_amount) == (3, Decimal("7.50"))
    assert set(OrderView.objects.values_list("sms_status", flat=True)) == {"pending"}


def test_seed_loads_consistent_read_models():
    call_command("seed", customers=20, orders=500)
    assert CustomerView.objects.count() == 20
    assert OrderView.objects.count() == 500
    expected = snapshot()
    rebuild_all()
    assert snapshot() == expected
    assert sum(CustomerView.objects.values_list("order_count", flat=True)) == 500


@pytest.mark.django_db(transaction=True)
def test_seed_does_not_wait_for_writes_in_progress():
    """A write transaction is open (it holds ROW EXCLUSIVE locks, as every command does); a
    seed that rebuilt every projection under SHARE locks would have to wait for it."""
    import threading

    import psycopg
    from django.db import connection

    from tests.fixtures.broker import database_url

    existing = make_customer()
    make_order(existing)
    done = threading.Event()

    def seed() -> None:
        try:
            call_command("seed", customers=5, orders=50)
            done.set()
        finally:
            connection.close()

    with psycopg.connect(database_url(), autocommit=False) as writer:
        writer.execute("UPDATE customers SET name = name WHERE id = %s", [existing])
        thread = threading.Thread(target=seed)
        thread.start()
        finished = done.wait(timeout=60)  # a seed waiting for the writer never finishes
        writer.rollback()
        thread.join(timeout=60)
    assert finished, "seed waited for a write transaction"
    assert CustomerView.objects.count() == 6
    assert OrderView.objects.count() == 51
    expected = snapshot()
    rebuild_all()
    assert snapshot() == expected


def test_connections_are_bounded_and_migrate_lifts_only_the_statement_bound():
    from django.db import connection
    from django.db.models.signals import pre_migrate

    def timeouts() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            statement = cursor.fetchone()[0]
            cursor.execute("SHOW lock_timeout")
            return statement, cursor.fetchone()[0]

    seen: list[tuple[str, str]] = []

    def during_migrate(**kwargs: object) -> None:
        seen.append(timeouts())

    assert timeouts() == ("15s", "5s")
    pre_migrate.connect(during_migrate, dispatch_uid="timeouts-probe")
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="timeouts-probe")
    assert set(seen) == {("0", "5s")}
    assert timeouts() == ("15s", "5s")
