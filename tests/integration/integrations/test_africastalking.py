"""The real africastalking SDK, through our adapter, against the loopback AT gateway."""

from __future__ import annotations

import json
import logging
import time

import pytest

from backend.integrations.africastalking import (
    AfricasTalkingGateway,
    ConsoleGateway,
    PermanentSmsError,
    TransientSmsError,
    get_gateway,
)
from tests.fixtures.broker import free_port
from tests.fixtures.gateway import API_KEY, USERNAME, Reply

TO = "+254712345678"


def make(gateway, **kw) -> AfricasTalkingGateway:
    return AfricasTalkingGateway(
        username=USERNAME,
        api_key=API_KEY,
        base_url=gateway.url,
        timeout=(1.0, kw.pop("read", 1.0)),
        **kw,
    )


def test_accepted_message_returns_the_gateway_message_id(gateway):
    result = make(gateway).send(to=TO, message="Hi Jane, order #1")

    [request] = gateway.requests
    assert request.path == "/version1/messaging"
    assert request.headers["apiKey"] == API_KEY
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"].startswith("africastalking-python/")
    assert request.form == {
        "username": USERNAME,
        "to": TO,
        "message": "Hi Jane, order #1",
        "bulkSMSMode": "1",
    }
    assert result.message_id == request.message_id
    assert result.message_id.startswith("ATXid_")
    assert result.cost == "KES 0.8000"
    assert gateway.messages == [request]


def test_sender_id_is_sent_as_from(gateway):
    make(gateway, sender_id="DUKA").send(to=TO, message="x")

    assert gateway.requests[0].form["from"] == "DUKA"


def test_json_with_charset_is_parsed_although_the_sdk_returns_a_string(gateway):
    gateway.script(Reply(content_type="application/json; charset=utf-8"))

    assert make(gateway).send(to=TO, message="x").message_id.startswith("ATXid_")


def test_queued_is_accepted(gateway):
    gateway.script(Reply(status_code=102))

    assert make(gateway).send(to=TO, message="x").message_id == gateway.requests[0].message_id


@pytest.mark.parametrize("http_status", [500, 502, 503])
def test_http_5xx_is_transient(gateway, http_status):
    gateway.script(Reply(http_status=http_status))

    with pytest.raises(TransientSmsError, match=f"HTTP {http_status}"):
        make(gateway).send(to=TO, message="x")


def test_read_timeout_is_transient(gateway):
    gateway.script(Reply(delay=1.0))

    with pytest.raises(TransientSmsError, match="timed out"):
        make(gateway, read=0.3).send(to=TO, message="x")
    assert gateway.wait_for_requests(1)
    assert gateway.messages == []


def test_connection_refused_is_transient():
    sms = AfricasTalkingGateway(
        username=USERNAME,
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout=(1.0, 1.0),
    )

    with pytest.raises(TransientSmsError, match="unreachable"):
        sms.send(to=TO, message="x")


@pytest.mark.parametrize("code", [401, 405, 500, 501, 502])
def test_transient_recipient_codes(gateway, code):
    gateway.script(Reply(status_code=code))

    with pytest.raises(TransientSmsError, match=str(code)):
        make(gateway).send(to=TO, message="x")


@pytest.mark.parametrize("code", [403, 404, 406, 407, 409])
def test_permanent_recipient_codes(gateway, code):
    gateway.script(Reply(status_code=code))

    with pytest.raises(PermanentSmsError, match=str(code)):
        make(gateway).send(to=TO, message="x")


def test_http_409_with_a_permanent_recipient_code_is_permanent(gateway):
    body = json.dumps(
        {"SMSMessageData": {"Message": "", "Recipients": [{"statusCode": 409, "number": TO}]}}
    )
    gateway.script(Reply(http_status=409, body=body))

    with pytest.raises(PermanentSmsError):
        make(gateway).send(to=TO, message="x")


def test_request_refused_as_a_whole_is_permanent(gateway):
    gateway.script(
        Reply(body=json.dumps({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}))
    )

    with pytest.raises(PermanentSmsError, match="InvalidSenderId"):
        make(gateway).send(to=TO, message="x")


def test_unreadable_2xx_is_transient(gateway):
    gateway.script(Reply(body="<html>maintenance</html>", content_type="text/html"))

    with pytest.raises(TransientSmsError, match="unreadable"):
        make(gateway).send(to=TO, message="x")


def test_invalid_number_is_permanent_without_a_request(gateway):
    with pytest.raises(PermanentSmsError, match="invalid recipient"):
        make(gateway).send(to="0712345678", message="x")
    assert gateway.requests == []


def test_wrong_api_key_is_transient_and_never_echoes_the_key(gateway):
    sms = AfricasTalkingGateway(
        username=USERNAME, api_key="wrong-key-42", base_url=gateway.url, timeout=(1, 1)
    )

    with pytest.raises(TransientSmsError, match="HTTP 401") as excinfo:
        sms.send(to=TO, message="x")
    assert "wrong-key-42" not in str(excinfo.value)


def test_base_url_follows_username_unless_overridden(gateway):
    assert AfricasTalkingGateway(username="sandbox", api_key="k").url == (
        "https://api.sandbox.africastalking.com/version1/messaging"
    )
    assert (
        AfricasTalkingGateway(username="shop", api_key="k").url
        == "https://api.africastalking.com/version1/messaging"
    )
    assert AfricasTalkingGateway(
        username="shop", api_key="k", base_url=gateway.url + "/version1/"
    ).url == (gateway.url + "/version1/messaging")


def test_get_gateway_uses_settings(settings, gateway):
    settings.AFRICAS_TALKING_USERNAME = None
    settings.AFRICAS_TALKING_API_KEY = None
    assert isinstance(get_gateway(), ConsoleGateway)

    settings.AFRICAS_TALKING_USERNAME = USERNAME
    settings.AFRICAS_TALKING_API_KEY = API_KEY
    settings.AFRICAS_TALKING_API_URL = gateway.url
    settings.AFRICAS_TALKING_SENDER_ID = "SHOP"
    sms = get_gateway()
    assert isinstance(sms, AfricasTalkingGateway)
    sms.send(to=TO, message="x")
    assert gateway.requests[0].form["from"] == "SHOP"


def test_console_gateway_logs_the_message(caplog):
    with caplog.at_level(logging.INFO, logger="backend.integrations.africastalking"):
        result = ConsoleGateway().send(to=TO, message="Hi Jane, order #1")

    assert result.message_id.startswith("console-")
    assert "Hi Jane, order #1" in caplog.text
    assert TO[-3:] in caplog.text  # the number (masked or not by the logging setup)
    with pytest.raises(PermanentSmsError):
        ConsoleGateway().send(to="0712", message="x")


def test_a_trickling_reply_is_cut_off_at_the_total_deadline(gateway):
    """Every byte arrives well inside the read timeout, so only a total deadline ends it."""
    gateway.script(Reply(trickle=0.1))
    started = time.monotonic()

    with pytest.raises(TransientSmsError, match="within 1s"):
        make(gateway, read=0.5, deadline=1.0).send(to=TO, message="x")

    assert time.monotonic() - started < 5  # the reply alone would take ~30 s
    [request] = gateway.wait_for_requests(1)
    deadline = time.monotonic() + 5
    while not request.client_gone and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request.client_gone  # the connection was really cut


def test_the_deadline_does_not_fire_after_a_complete_reply(gateway):
    sms = make(gateway, deadline=0.3)
    for _ in range(3):
        sms.send(to=TO, message="x")
    time.sleep(0.5)  # past the deadline of every call: the next call must still work

    assert sms.send(to=TO, message="x").message_id == gateway.requests[-1].message_id
    assert len(gateway.messages) == 4


def test_one_keep_alive_connection_per_thread(gateway):
    sms = make(gateway)
    for _ in range(3):
        sms.send(to=TO, message="x")

    ports = {request.client_port for request in gateway.requests}
    assert len(ports) == 1  # the SDK alone opens a connection per SMS


def test_proxy_from_the_environment_is_used(gateway, monkeypatch):
    """The environment is read once per URL (not per request), but still read: a gateway behind
    an HTTP proxy (HTTP_PROXY / NO_PROXY) keeps working."""
    import threading

    monkeypatch.setenv("HTTP_PROXY", gateway.url)  # the fake gateway plays the proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result: list[BaseException | None] = []

    def send() -> None:  # a fresh thread: a fresh session and environment cache
        try:
            AfricasTalkingGateway(
                username=USERNAME,
                api_key=API_KEY,
                base_url="http://gateway.example.test",
                timeout=(1.0, 1.0),
            ).send(to=TO, message="x")
            result.append(None)
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join(10)
    [request] = gateway.requests
    assert request.path == "http://gateway.example.test/version1/messaging"  # proxy form
    assert isinstance(result[0], PermanentSmsError | TransientSmsError)  # the fake's 404
