"""Africa's Talking delivery-report callback: `POST /api/v1/sms/delivery-reports/?token=...`.

AT signs nothing, so the URL carries a shared secret (`SMS_CALLBACK_TOKEN`, 32+ characters),
compared in constant time; without the setting every callback is refused. Wrong or missing tokens
are counted per address (`SMS_CALLBACK_FAILURES_PER_ADDRESS` in `SMS_CALLBACK_FAILURE_WINDOW_S`);
past that, further ones are a 429 with Retry-After. The right token is always served, so nobody
can lock AT out by failing from its address (or from behind the same proxy). AT posts form fields (`id`,
`status`, `phoneNumber`, `networkCode`, `failureReason`, `retryCount`, ...). Unknown ids,
intermediate statuses and repeats are acknowledged with 200 so AT stops retrying them.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router, Schema

from backend.api.openapi import problem_ref
from backend.commands.outbox import sms_notifications as commands
from backend.limits import client_address, count_failure, window_key
from backend.problems import problem_response

router = Router(tags=["sms"], auth=None)
FORM = "application/x-www-form-urlencoded"


class DeliveryReportAck(Schema):
    updated: bool


def _token_ok(given: str | None) -> bool:
    expected = settings.SMS_CALLBACK_TOKEN
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@router.post(
    "/delivery-reports/",
    auth=None,
    response={200: DeliveryReportAck},
    url_name="sms_delivery_reports",
    openapi_extra={
        "responses": {
            "403": problem_ref("CallbackForbidden"),
            "429": problem_ref("TooManyFailedCallbacks"),
            "415": problem_ref("NotFormData"),
            "422": problem_ref("ValidationFailed"),
        },
        "parameters": [
            {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {
                FORM: {"schema": {"$ref": "#/components/schemas/DeliveryReportForm"}},
            },
        },
    },
)
def receive_delivery_report(request: HttpRequest) -> HttpResponse:
    """Delivery report from Africa's Talking: moves the order's `sms_status` to `delivered`
    (Success) or `failed` (Failed, Rejected); other statuses, unknown ids and repeats change
    nothing. A missing or wrong `token` is a 403."""
    if not _token_ok(request.GET.get("token")):
        window = settings.SMS_CALLBACK_FAILURE_WINDOW_S
        key = window_key("sms-callback:failures", client_address(request), window)
        wait = count_failure({key: settings.SMS_CALLBACK_FAILURES_PER_ADDRESS}, window=window)
        if wait is not None:
            return problem_response(
                429,
                f"Too many callbacks with a wrong token; retry in {wait} s.",
                code="too-many-failed-callbacks",
                headers={"Retry-After": str(wait)},
            )
        return problem_response(
            403, "Missing or invalid callback token.", code="forbidden", title="Forbidden"
        )
    message_id = request.POST.get("id", "").strip()
    status = request.POST.get("status", "").strip()
    # PostgreSQL cannot compare or store NUL: such a report is as unusable as a missing field.
    missing = [
        name
        for name, value in (("id", message_id), ("status", status))
        if not value or "\x00" in value
    ]
    if missing:
        return problem_response(
            422,
            "A delivery report needs the fields id and status.",
            code="validation-error",
            title="Validation failed",
            errors=[{"loc": ["form", name], "msg": "Field required"} for name in missing],
        )
    changed = commands.apply_delivery_report(
        message_id=message_id[:100],
        status=status,
        failure_reason=request.POST.get("failureReason", "").replace("\x00", "").strip()[:200],
    )
    return JsonResponse({"updated": changed})
