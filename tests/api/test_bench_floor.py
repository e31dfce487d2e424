"""The bench's floor views (`bench/run.py --floor`) serve the API's bytes: they bound the API's
reads only if they run the very same statements (bench/duka_bench/floor_urls.py)."""

from __future__ import annotations

import pytest

from tests.cursors import unstamped
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db


def test_floor_views_return_the_api_reads_bytes(api, client, settings) -> None:
    customers = [make_customer(code=f"FLOOR-{n}") for n in range(3)]
    orders = [make_order(c, item=f"Item {n}") for n, c in enumerate(customers * 2)]
    expected = {
        f"/bench/floor/sql/{orders[1]}/": api.get(f"orders/{orders[1]}/").content,
        "/bench/floor/orders/": api.get("orders/?limit=50").content,
        "/bench/floor/customers/": api.get("customers/?limit=50").content,
    }
    settings.ROOT_URLCONF = "bench.duka_bench.floor_urls"
    for path, body in expected.items():
        response = client.get(path)
        assert response.status_code == 200, path
        # Bytes for bytes, but for a cursor's signing second (tests/cursors.py).
        assert unstamped(response.content) == unstamped(body), path
    assert client.get("/bench/floor/sql/999999999/").status_code == 404
    # The service's own routes are still behind the floor's.
    assert client.get("/healthz").status_code == 200
