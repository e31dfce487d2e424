"""Contract between the installed Africa's Talking SDK and our one adapter, `SdkSMSService`.

The adapter overrides the SDK's private `_init_service` and `_make_request` and reads
`_make_url`. These tests pin how the SDK calls them; no network and no service, so nothing can
skip them. A failure means the SDK changed: fix the adapter and its bound in pyproject.toml.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from africastalking.Service import Service
from africastalking.SMS import SMSService

from backend.integrations import africastalking as at

TO = "+254712345678"


@pytest.fixture
def posted(monkeypatch) -> list[dict[str, Any]]:
    """What the adapter hands our transport (`post_within`), answering 201 with `OK`."""
    calls: list[dict[str, Any]] = []

    def post_within(url: str, **kwargs: Any) -> at.GatewayReply:
        calls.append({"url": url, **kwargs})
        return at.GatewayReply(201, "OK")

    monkeypatch.setattr(at, "post_within", post_within)
    return calls


def test_the_overridden_hooks_keep_their_signatures():
    assert list(inspect.signature(Service._make_request).parameters) == [
        "self",
        "url",
        "method",
        "headers",
        "data",
        "params",
        "callback",
        "timeout",
    ]
    assert list(inspect.signature(SMSService._init_service).parameters) == ["self"]
    assert list(inspect.signature(Service._make_url).parameters) == ["self", "path", "content"]


def test_the_constructor_runs_init_service_and_urls_join_the_base():
    def url(username: str, base_url: str | None) -> str:
        return at.SdkSMSService(username, "k", base_url=base_url, deadline=1.0).messaging_url

    assert url("shop", None) == "https://api.africastalking.com/version1/messaging"
    assert url("sandbox", None) == "https://api.sandbox.africastalking.com/version1/messaging"
    assert url("shop", "http://127.0.0.1:9/") == "http://127.0.0.1:9/version1/messaging"


def test_send_hands_the_wire_request_to_make_request(posted):
    service = at.SdkSMSService("shop", "key-1", base_url="http://127.0.0.1:9", deadline=5.0)

    assert service.send("Hi", [TO], sender_id="DUKA", timeout=(1.0, 2.0)) == "OK"

    [call] = posted
    headers = call.pop("headers")
    assert call == {
        "url": "http://127.0.0.1:9/version1/messaging",
        "deadline": 5.0,
        "timeout": (1.0, 2.0),
        "params": None,
        "data": {"username": "shop", "to": TO, "message": "Hi", "bulkSMSMode": 1, "from": "DUKA"},
    }
    assert headers["apiKey"] == "key-1"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("africastalking-python/")


def test_send_validates_the_number_before_any_request(posted):
    service = at.SdkSMSService("shop", "k", base_url="http://127.0.0.1:9", deadline=1.0)

    with pytest.raises(ValueError, match="Invalid phone number"):
        service.send("Hi", ["0712345678"])
    assert posted == []


def test_a_refusal_keeps_its_http_status(monkeypatch):
    monkeypatch.setattr(at, "post_within", lambda url, **kw: at.GatewayReply(409, "DND"))
    service = at.SdkSMSService("shop", "k", base_url="http://127.0.0.1:9", deadline=1.0)

    with pytest.raises(at.GatewayHTTPError) as refused:
        service.send("Hi", [TO])
    assert (refused.value.status_code, refused.value.body) == (409, "DND")
