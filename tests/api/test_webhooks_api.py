"""Webhook endpoints through the API (contract section 9), and the event rows each change
writes in its own transaction."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from backend.commands import customers
from backend.commands.models import WebhookDelivery, WebhookEndpoint
from backend.commands.outbox import webhook_deliveries as webhooks
from backend.errors import DuplicateCode
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

LOOPBACK = "http://127.0.0.1:9/hooks"


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return settings


def create(api, url: str = LOOPBACK, events=("order.created",), **extra):
    return api.post("webhooks/", {"url": url, "events": list(events), **extra})


def test_create_shows_the_secret_once(api, private_ok):
    response = create(api, description="ERP", events=["order.created", "customer.deleted"])

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > 40
    assert response["Location"] == f"/api/v1/webhooks/{body['id']}/"
    assert response["Cache-Control"] == "no-store"
    assert body["url"] == LOOPBACK
    assert body["events"] == ["order.created", "customer.deleted"]
    assert body["description"] == "ERP"
    assert body["enabled"] is True
    assert body["disabled_reason"] is None
    assert body["last_attempt_at"] is None
    assert body["last_error"] is None
    assert body["created_at"].endswith("Z")

    shown = api.get(f"webhooks/{body['id']}/").json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in body.items() if k != "secret"}
    listed = api.get("webhooks/").json()
    assert listed["items"] == [shown]
    assert listed["next_cursor"] is None


def test_list_pages_by_id(api, private_ok):
    ids = [create(api).json()["id"] for _ in range(3)]
    first = api.get("webhooks/?limit=2").json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    second = api.get(f"webhooks/?limit=2&cursor={first['next_cursor']}").json()
    assert [item["id"] for item in second["items"]] == ids[2:]
    assert second["next_cursor"] is None
    assert api.get("webhooks/?cursor=forged").status_code == 400


def test_delete_then_404(api, private_ok):
    hook_id = create(api).json()["id"]
    assert api.call("DELETE", f"webhooks/{hook_id}/").status_code == 204
    assert api.get(f"webhooks/{hook_id}/").status_code == 404
    assert api.call("DELETE", f"webhooks/{hook_id}/").status_code == 404
    assert api.post(f"webhooks/{hook_id}/ping/", {}).status_code == 404
    assert api.get("webhooks/").json()["items"] == []


def test_ping_queues_a_ping_event(api, private_ok):
    hook_id = create(api).json()["id"]
    response = api.post(f"webhooks/{hook_id}/ping/", {})
    assert response.status_code == 202
    [row] = WebhookDelivery.objects.all()
    assert row.event_id == response.json()["event_id"]
    assert json.loads(row.body)["type"] == "webhook.ping"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": LOOPBACK, "events": ["order.shipped"]}, "events"),
        ({"url": LOOPBACK, "events": []}, "events"),
        ({"url": LOOPBACK}, "events"),
        ({"events": ["order.created"]}, "url"),
        ({"url": LOOPBACK, "events": ["order.created"], "secret": "mine"}, "secret"),
        ({"url": "ftp://example.com/x", "events": ["order.created"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["order.created"]}, "url"),
        ({"url": "http://127.0.0.1:99999/x", "events": ["order.created"]}, "url"),
    ],
)
def test_invalid_bodies_are_422_and_create_nothing(api, private_ok, body, field):
    response = api.post("webhooks/", body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert any(field in error["loc"] for error in response.json()["errors"])
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://[::1]/hooks", "loopback"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://192.168.0.10/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://localhost/hooks", "loopback"),  # a name that resolves to 127.0.0.1
        ("http://93.184.215.14/hooks", "https"),
        ("https://no-such-host.invalid/hooks", "does not resolve"),
        # Issue 24: accepted at create before.
        ("https://[::127.0.0.1]/hooks", "loopback"),
        ("https://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "metadata"),
        ("https://[2002:7f00:1::1]/hooks", "loopback"),
        ("https://[fec0::1]/hooks", "site-local"),
    ],
)
def test_ssrf_refusals_without_the_opt_in(api, url, why):
    response = create(api, url=url)
    assert response.status_code == 422, response.content
    detail = response.json()["errors"][0]["msg"]
    assert why in detail
    # No resolved address, no operating-system error text (issue 24: "resolves to 127.0.0.1").
    for leak in ("127.0.0.1", "Errno", "Name or service", "not known", "::1,"):
        assert leak not in detail, (leak, detail)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/x",
        "http://localhost:8080/hooks",
    ],
)
def test_private_addresses_are_accepted_with_the_opt_in(api, private_ok, url):
    assert create(api, url=url).status_code == 201


def test_a_public_address_is_accepted_without_the_opt_in(api):
    # An address literal: nothing to resolve, so no network is needed.
    assert create(api, url="https://93.184.215.14/hooks").status_code == 201


def test_the_scope_is_required(client, auth_headers, private_ok):
    response = client.get("/api/v1/webhooks/", **auth_headers("orders:read", "orders:write"))
    assert response.status_code == 403
    assert 'scope="webhooks:manage"' in response["WWW-Authenticate"]


# --- Event rows ---------------------------------------------------------------------------------


def events_of(endpoint_id: int) -> list[dict]:
    return [
        json.loads(row.body)
        for row in WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("pk")
    ]


def test_each_change_writes_the_resource_as_the_api_shows_it(api, private_ok):
    everything = create(
        api,
        events=["customer.created", "customer.updated", "customer.deleted", "order.created"],
    ).json()["id"]
    orders_only = create(api, events=["order.created"]).json()["id"]

    customer = api.post(
        "customers/", {"name": "Jane", "code": "J-1", "phone_number": "0712345678"}
    ).json()
    updated = api.call("PATCH", f"customers/{customer['id']}/", {"name": "Jane W"}).json()
    order = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Sugar", "amount": 120.5}
    ).json()
    spare = api.post(
        "customers/", {"name": "Spare", "code": "S-1", "phone_number": "0712345679"}
    ).json()
    assert api.call("DELETE", f"customers/{spare['id']}/").status_code == 204

    got = events_of(everything)
    assert [e["type"] for e in got] == [
        "customer.created",
        "customer.updated",
        "order.created",
        "customer.created",
        "customer.deleted",
    ]
    assert got[0]["data"] == customer
    assert got[1]["data"] == updated
    # The API's answer may already show a later SMS status; everything else is the same.
    assert got[2]["data"] == {**order, "sms_status": "pending", "sms_error": None}
    assert got[3]["data"] == spare
    assert got[4]["data"] == spare
    assert all(e["timestamp"].endswith("Z") for e in got)
    assert [e["type"] for e in events_of(orders_only)] == ["order.created"]
    rows = WebhookDelivery.objects.filter(event_type="order.created")
    assert len({row.event_id for row in rows}) == 1  # one id per event, whatever the endpoint


def test_rolled_back_changes_write_no_event(api, private_ok):
    hook_id = create(api, events=["customer.created", "order.created"]).json()["id"]
    api.post("customers/", {"name": "A", "code": "DUP", "phone_number": "0712345678"})
    before = WebhookDelivery.objects.count()

    duplicate = api.post("customers/", {"name": "B", "code": "dup", "phone_number": "0712345670"})
    assert duplicate.status_code == 409
    unknown = api.post("orders/", {"customer_id": 999999, "item": "X", "amount": 1})
    assert unknown.status_code == 422
    with pytest.raises(DuplicateCode):
        customers.create_customer(
            customers.CreateCustomer(name="C", code="DUP", phone_number="0712345671")
        )

    class Boom(Exception):
        pass

    @transaction.atomic
    def change_that_fails() -> None:
        assert webhooks.record_event("customer.created", subject="customer:0", data={"id": 0})
        raise Boom

    with pytest.raises(Boom):
        change_that_fails()

    assert WebhookDelivery.objects.count() == before == 1
    assert WebhookDelivery.objects.get().endpoint_id == hook_id


# --- Issue 24: ownership, read scopes, the URL after the 201, the cap -----------------------------

EVERY_READ = ("webhooks:manage", "customers:read", "orders:read")


@pytest.fixture
def mallory(client, auth_headers) -> Api:
    """Another client: every scope a webhook needs, another `sub`."""
    return Api(client, auth_headers(*EVERY_READ, sub="mallory"))


def test_an_endpoint_belongs_to_the_subject_that_created_it(api, mallory, private_ok):
    mine = create(api, description="alice's").json()["id"]
    theirs = create(mallory, description="mallory's").json()["id"]

    assert api.get(f"webhooks/{mine}/").status_code == 200
    assert api.get(f"webhooks/{theirs}/").status_code == 404
    got = mallory.get(f"webhooks/{mine}/")
    assert got.status_code == 404
    assert got["Content-Type"] == "application/problem+json"
    assert mallory.call("DELETE", f"webhooks/{mine}/").status_code == 404
    assert mallory.post(f"webhooks/{mine}/ping/", {}).status_code == 404
    assert [item["id"] for item in mallory.get("webhooks/").json()["items"]] == [theirs]
    assert [item["id"] for item in api.get("webhooks/").json()["items"]] == [mine]

    # Nothing of mine changed: still live, and no ping was queued to it.
    assert api.get(f"webhooks/{mine}/").json()["enabled"] is True
    assert not WebhookDelivery.objects.filter(endpoint_id=mine).exists()
    # The owner still manages it.
    assert api.post(f"webhooks/{mine}/ping/", {}).status_code == 202
    assert api.call("DELETE", f"webhooks/{mine}/").status_code == 204


def test_a_cursor_of_another_subject_is_refused(api, mallory, private_ok):
    for _ in range(2):
        create(api)
    cursor = api.get("webhooks/?limit=1").json()["next_cursor"]
    assert mallory.get(f"webhooks/?limit=1&cursor={cursor}").status_code == 400


def test_endpoints_from_before_ownership_are_visible_to_nobody(api, private_ok):
    """Migration 0008 gives existing rows the owner "": no token has an empty `sub`."""
    hook_id = create(api).json()["id"]
    WebhookEndpoint.objects.filter(pk=hook_id).update(owner="")

    assert api.get(f"webhooks/{hook_id}/").status_code == 404
    assert api.get("webhooks/").json()["items"] == []


@pytest.mark.parametrize(
    ("scopes", "events", "needed"),
    [
        (("webhooks:manage",), ["customer.created"], "customers:read"),
        (("webhooks:manage", "customers:write"), ["customer.updated"], "customers:read"),
        (("webhooks:manage", "customers:read"), ["order.created"], "orders:read"),
        (("webhooks:manage", "orders:write"), ["order.sms_status_changed"], "orders:read"),
        (
            ("webhooks:manage",),
            ["order.created", "customer.deleted"],
            "customers:read orders:read",
        ),
    ],
)
def test_subscribing_needs_the_read_scope_of_the_events(
    client, auth_headers, private_ok, scopes, events, needed
):
    caller = Api(client, auth_headers(*scopes))
    response = create(caller, events=events)

    assert response.status_code == 403, response.content
    assert response["WWW-Authenticate"] == f'Bearer error="insufficient_scope", scope="{needed}"'
    assert response["Content-Type"] == "application/problem+json"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("scopes", "events"),
    [
        (("webhooks:manage", "customers:read"), ["customer.created", "customer.deleted"]),
        (("webhooks:manage", "orders:read"), ["order.created"]),
    ],
)
def test_the_read_scope_of_the_events_is_enough(client, auth_headers, private_ok, scopes, events):
    assert create(Api(client, auth_headers(*scopes)), events=events).status_code == 201


def test_the_url_is_shown_whole_only_in_the_201(api, private_ok):
    url = "http://127.0.0.1:9/hooks/in?token=capability-s3cr3t&x=1"
    created = create(api, url=url)
    assert created.status_code == 201
    assert created.json()["url"] == url

    hook_id = created.json()["id"]
    shown = api.get(f"webhooks/{hook_id}/")
    listed = api.get("webhooks/")
    assert shown.json()["url"] == "http://127.0.0.1:9/hooks/in"
    assert listed.json()["items"][0]["url"] == "http://127.0.0.1:9/hooks/in"
    for answer in (shown, listed):
        assert b"capability-s3cr3t" not in answer.content
    # Events still go to the whole URL.
    assert WebhookEndpoint.objects.get(pk=hook_id).url == url


def test_a_subject_may_have_at_most_webhooks_max_endpoints(api, mallory, private_ok):
    private_ok.WEBHOOKS_MAX_ENDPOINTS = 3
    ids = [create(api).json()["id"] for _ in range(3)]

    refused = create(api, description="one too many")
    assert refused.status_code == 422, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    assert "at most 3 webhook endpoints" in refused.json()["detail"]
    assert WebhookEndpoint.objects.count() == 3
    assert len(api.get("webhooks/").json()["items"]) == 3

    # The cap is per subject, and deleted endpoints do not count.
    assert create(mallory).status_code == 201
    assert api.call("DELETE", f"webhooks/{ids[0]}/").status_code == 204
    assert create(api).status_code == 201
    assert create(api).status_code == 422


def test_every_event_type_names_its_read_scope():
    from backend.api.schemas.webhooks import READ_SCOPE_OF_EVENT, EventType
    from backend.notifications import events

    assert set(READ_SCOPE_OF_EVENT) == set(EventType.__args__) == set(events.EVENT_TYPES)
    assert set(READ_SCOPE_OF_EVENT.values()) == {"customers:read", "orders:read"}
