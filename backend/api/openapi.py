"""What the OpenAPI document must say beyond what Ninja infers from the routers.

Ninja documents each operation's success response only. `complete_openapi(document)` adds, in
place and idempotently:

* the `Problem` schema (RFC 9457) and the problem+json error responses each operation can
  answer, derived from its shape: secured -> 401/403; path id -> 404; parameters or a body ->
  400/422; a body -> 413; a JSON body -> 415; secured write -> 409/429; every one -> 503
  while the database is away;
* the `Idempotency-Key` request header of the POST creates and the `Location` /
  `Idempotent-Replayed` headers of their 201;
* `ETag` / `If-None-Match` / 304 on the single-resource reads and `If-Match` / 412 on the
  customer writes (contract section 5, "Conditional requests");
* OpenAPI links from each create to the operations on what it created (used by stateful fuzzing
  and by client generators).

Responses an operation already declares (e.g. through `openapi_extra`) are kept as they are.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from backend.api.schemas.sms import DELIVERY_REPORT_FORM
from backend.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

_SECURED_WRITES = frozenset({"post", "put", "patch", "delete"})
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` names each bad field of a validation error.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "`about:blank` or a problem type URI."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                },
            },
        },
    },
}

# name -> (status, description, response headers)
_RESPONSES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "BadRequest": (
        "400",
        "Malformed JSON, a body unreadable as its `Content-Type` (`malformed-body`), a bad or "
        "over-long cursor, a bad `Idempotency-Key`, or a disallowed `Host`.",
        {},
    ),
    "Unauthorized": (
        "401",
        "No token, or an invalid one.",
        {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    ),
    "Forbidden": (
        "403",
        "The token lacks the scope this operation needs.",
        {"WWW-Authenticate": {"required": False, "schema": {"type": "string"}}},
    ),
    "NotFound": ("404", "No resource with this id.", {}),
    "Conflict": (
        "409",
        "A conflict; its problem `type` says which: `"
        + PROBLEM_BASE
        + "duplicate-code` (another customer has this `code`), `"
        + PROBLEM_BASE
        + "customer-has-orders` (delete of a customer with orders), `"
        + PROBLEM_BASE
        + "idempotency-key-reused` (the `Idempotency-Key` was used with another body; send a new "
        "key), `"
        + PROBLEM_BASE
        + "idempotency-in-progress` (the first request with this key is still running; retry "
        "after `Retry-After` seconds), `"
        + PROBLEM_BASE
        + "sms-not-failed` (an SMS re-send for an order whose notification has not failed).",
        {
            "Retry-After": {
                "required": False,
                "description": "Seconds to wait; sent with `idempotency-in-progress` only.",
                "schema": {"type": "string"},
            }
        },
    ),
    "CallbackForbidden": ("403", "Missing or wrong callback `token`.", {}),
    "PreconditionFailed": (
        "412",
        "`If-Match` names none of the current ETags (the resource changed since it was read); "
        "nothing was changed.",
        {},
    ),
    "PayloadTooLarge": (
        "413",
        "The body is larger than 1 MiB; it was not read, and the server closes the connection "
        "(`Connection: close`).",
        {},
    ),
    "UnsupportedMediaType": ("415", "The body is not `application/json`.", {}),
    "NotFormData": ("415", "The body is not form data.", {}),
    "ValidationFailed": ("422", "Validation failed; `errors` names each bad field.", {}),
    "TooManyRequests": (
        "429",
        "Write rate limit of this subject exceeded.",
        {"Retry-After": {"required": True, "schema": {"type": "string"}}},
    ),
    "DatabaseUnavailable": (
        "503",
        "The database is unreachable or did not answer in time (`"
        + PROBLEM_BASE
        + "database-unavailable`); retry after `Retry-After` seconds (a create with the same "
        "`Idempotency-Key`, so that it happens at most once).",
        {"Retry-After": {"required": True, "schema": {"type": "string"}}},
    ),
    "TooManyFailedCallbacks": (
        "429",
        "Too many callbacks with a missing or wrong `token` from this address; the right token "
        "is still served.",
        {"Retry-After": {"required": True, "schema": {"type": "string"}}},
    ),
}

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: a repeat with the same body within 24 h returns the first "
    "response and creates nothing; another body with the same key is a 409. 1-255 printable "
    "ASCII characters.",
    # Leading/trailing spaces are not part of a header value on the wire (RFC 9110 5.5).
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}

_CREATED_HEADERS: dict[str, Any] = {
    "Location": {
        "required": True,
        "description": "Path of the created resource.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "required": False,
        "description": "`true` when this is the stored response of an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


_ETAG_HEADER: dict[str, Any] = {
    "required": True,
    "description": "Strong entity tag of this representation (for `If-None-Match` / `If-Match`).",
    "schema": {"type": "string"},
}
IF_NONE_MATCH_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "ETags (or `*`) the client holds: when one is current the answer is a 304 "
    "without a body.",
    "schema": {"type": "string"},
}
IF_MATCH_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": "Proceed only if the customer's current ETag is in this list (or `*`); "
    "otherwise 412 and nothing changes. Checked against the locked row, so of two editors "
    "sending the same ETag only the first succeeds.",
    "schema": {"type": "string"},
}
# operationId -> conditional behaviour (contract section 5, "Conditional requests").
_CACHEABLE = frozenset({"getCustomer", "getOrder"})
_IF_MATCH = frozenset({"replaceCustomer", "updateCustomer", "deleteCustomer"})


def _add_conditional(operation: dict[str, Any]) -> None:
    operation_id = operation.get("operationId")
    responses = operation["responses"]
    parameters = operation.setdefault("parameters", [])
    names = {p.get("name", "").lower() for p in parameters}
    if operation_id in _CACHEABLE:
        if "if-none-match" not in names:
            parameters.append(deepcopy(IF_NONE_MATCH_PARAMETER))
        responses.setdefault(
            "304",
            {
                "description": "Not modified: the `If-None-Match` ETag is current (no body).",
                "headers": {"ETag": deepcopy(_ETAG_HEADER)},
            },
        )
    if operation_id in _IF_MATCH:
        if "if-match" not in names:
            parameters.append(deepcopy(IF_MATCH_PARAMETER))
        responses.setdefault("412", problem_ref("PreconditionFailed"))
    if operation_id in _CACHEABLE | _IF_MATCH and "200" in responses:
        responses["200"].setdefault("headers", {}).setdefault("ETag", deepcopy(_ETAG_HEADER))


def problem_ref(name: str) -> dict[str, str]:
    """`{"$ref": ...}` of a shared error response, for routers' `openapi_extra`."""
    if name not in _RESPONSES:
        raise KeyError(name)
    return {"$ref": f"#/components/responses/{name}"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def _has_json_body(operation: dict[str, Any]) -> bool:
    content = operation.get("requestBody", {}).get("content", {})
    return any(media == "application/json" or media.endswith("+json") for media in content)


def _error_names(method: str, operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    secured = bool(operation.get("security"))
    names = []
    if parameters or "requestBody" in operation:
        names += ["BadRequest", "ValidationFailed"]
    if secured:
        names += ["Unauthorized", "Forbidden"]
    if any(p.get("in") == "path" for p in parameters):
        names.append("NotFound")
    if "requestBody" in operation:
        names.append("PayloadTooLarge")
    if _has_json_body(operation):
        names.append("UnsupportedMediaType")
    if secured and method in _SECURED_WRITES:
        names += ["Conflict", "TooManyRequests"]
    names.append("DatabaseUnavailable")  # every operation reads or writes the database
    return names


def _is_create(method: str, operation: dict[str, Any]) -> bool:
    return (
        method == "post" and "201" in operation.get("responses", {}) and _has_json_body(operation)
    )


def _find(document: dict[str, Any], path: str, method: str) -> str | None:
    operation = document.get("paths", {}).get(path, {}).get(method)
    return operation.get("operationId") if operation else None


def _add_links(document: dict[str, Any], prefix: str) -> None:
    """Customer create -> get/put/patch/delete it, list and place its orders; order create -> get
    it and list its customer's orders."""
    customers, orders = f"{prefix}/customers/", f"{prefix}/orders/"
    customer, order = f"{customers}{{customer_id}}/", f"{orders}{{order_id}}/"
    by_id = {"customer_id": "$response.body#/id"}
    wanted: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, Any]]]] = {
        (customers, "post"): {
            "GetCustomer": (customer, "get", {"parameters": by_id}),
            "ReplaceCustomer": (customer, "put", {"parameters": by_id}),
            "PatchCustomer": (customer, "patch", {"parameters": by_id}),
            "DeleteCustomer": (customer, "delete", {"parameters": by_id}),
            "ListCustomerOrders": (orders, "get", {"parameters": by_id}),
            "PlaceOrder": (orders, "post", {"requestBody": {"customer_id": "$response.body#/id"}}),
        },
        (orders, "post"): {
            "GetOrder": (order, "get", {"parameters": {"order_id": "$response.body#/id"}}),
            "ListCustomerOrders": (
                orders,
                "get",
                {"parameters": {"customer_id": "$response.body#/customer_id"}},
            ),
            "GetOrderCustomer": (
                customer,
                "get",
                {"parameters": {"customer_id": "$response.body#/customer_id"}},
            ),
        },
    }
    for (path, method), links in wanted.items():
        source = document.get("paths", {}).get(path, {}).get(method)
        if not source or "201" not in source.get("responses", {}):
            continue
        target_links = source["responses"]["201"].setdefault("links", {})
        for name, (target_path, target_method, spec) in links.items():
            operation_id = _find(document, target_path, target_method)
            if operation_id is not None:
                target_links.setdefault(name, {"operationId": operation_id, **deepcopy(spec)})


def complete_openapi(document: dict[str, Any], *, prefix: str = "/api/v1") -> dict[str, Any]:
    """Add the error responses, headers and links described in the module docstring."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Problem", deepcopy(PROBLEM_SCHEMA))
    schemas.setdefault("DeliveryReportForm", deepcopy(DELIVERY_REPORT_FORM))
    shared = components.setdefault("responses", {})
    problem_content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for name, (_status, description, headers) in _RESPONSES.items():
        response: dict[str, Any] = {
            "description": description,
            "content": deepcopy(problem_content),
        }
        if headers:
            response["headers"] = deepcopy(headers)
        shared.setdefault(name, response)

    for _path, method, operation in _operations(document):
        # Ninja keys responses by int until the document is serialised; JSON keys are strings.
        responses = {str(status): spec for status, spec in operation.get("responses", {}).items()}
        operation["responses"] = responses
        for name in _error_names(method, operation):
            responses.setdefault(_RESPONSES[name][0], problem_ref(name))
        _add_conditional(operation)
        if method == "post" and ("201" in responses or "202" in responses):
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name", "").lower() == "idempotency-key" for p in parameters):
                parameters.append(deepcopy(IDEMPOTENCY_KEY_PARAMETER))
        if _is_create(method, operation):
            created = responses["201"]
            for header, spec in _CREATED_HEADERS.items():
                created.setdefault("headers", {}).setdefault(header, deepcopy(spec))
    _add_links(document, prefix)
    return document
