"""Conditional requests (RFC 9110 13): `ETag` + `If-None-Match` on reads, `If-Match` on writes."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

from backend.api import rendering

_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


def _tags(header: str, *, weak: bool) -> frozenset[str]:
    """Entity tags of a header value; `*` stays `*`. Weak tags count only if `weak` (If-None-Match
    compares weakly, If-Match strongly: a `W/` tag can never match there). Malformed members are
    ignored, so a garbled header matches nothing and a write is refused rather than let through."""
    if header.strip() == "*":
        return frozenset({"*"})
    tags: set[str] = set()
    position = 0
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None:
            # Skip to the next comma; an unquoted or broken member names no tag.
            comma = header.find(",", position)
            if comma < 0:
                break
            position = comma + 1
            continue
        if weak or not match.group(1):
            tags.add(match.group(2))
        position = match.end()
    return frozenset(tags)


def if_match(request: HttpRequest) -> frozenset[str] | None:
    """The `If-Match` tags for a write command, or None when the header is absent."""
    header = request.headers.get("If-Match")
    return None if header is None else _tags(header, weak=False)


def representation(request: HttpRequest, body: bytes, tag: str) -> HttpResponse:
    """200 with the JSON `body` and `ETag`, or 304 (no body) when `If-None-Match` names the
    tag or is `*`."""
    header = request.headers.get("If-None-Match")
    if header is not None:
        tags = _tags(header, weak=True)
        if "*" in tags or tag in tags:
            response: HttpResponse = HttpResponseNotModified()
            response["ETag"] = tag
            return response
    return tagged(rendering.json_response(body), tag)


def tagged(response: HttpResponse, tag: str) -> HttpResponse:
    response["ETag"] = tag
    return response
