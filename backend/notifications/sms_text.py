"""The order SMS text, kept to one segment, and the GSM 03.38 rules that decide what one is.

GSM-7 is an SMS standard, not a detail of one gateway, so its tables live here rather than in
the Africa's Talking integration.
"""

from __future__ import annotations

import unicodedata

# --- SMS encoding: one segment is 160 GSM-7 septets or 70 UCS-2 code units ----------------------

GSM7_SEGMENT = 160
UCS2_SEGMENT = 70
# GSM 03.38 basic character set (without ESC) and the extension table (each costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7 = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    return GSM7.issuperset(text)


def sms_units(text: str) -> tuple[int, int]:
    """(units used, units in one segment) for the encoding the text needs."""
    if is_gsm7(text):
        escaped = sum(text.count(ch) for ch in GSM7_EXTENSION.intersection(text))
        return len(text) + escaped, GSM7_SEGMENT
    # UCS-2 on the air is UTF-16: characters outside the BMP (emoji) take two units.
    return len(text.encode("utf-16-le")) // 2, UCS2_SEGMENT


def fits_one_segment(text: str) -> bool:
    used, limit = sms_units(text)
    return used <= limit


# --- Message text ------------------------------------------------------------------------------

# Typographic characters outside GSM-7 that have a plain equivalent: keeping the message GSM-7
# keeps it at 160 characters instead of 70.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\t": " ",
    }
)
_TEMPLATES: tuple[tuple[str, int], ...] = (
    # (template, shortest item worth keeping in it)
    ("Hi {name}, we received your order #{order_id}: {item}, KES {amount}. Thank you!", 16),
    ("Hi {name}, order #{order_id} received: {item}, KES {amount}.", 10),
    ("Order #{order_id} received: {item}, KES {amount}.", 1),
)


def gsm_friendly(text: str) -> str:
    """Single-spaced, typographic marks made plain, accents dropped where GSM-7 lacks them."""
    text = " ".join(text.translate(_PLAIN).split())
    if is_gsm7(text):
        return text
    out = []
    for ch in text:
        if ch in GSM7:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and is_gsm7(base) else ch)
    return "".join(out)


def _shorten(text: str, length: int, ellipsis: str) -> str:
    if len(text) <= length:
        return text
    return text[: max(length - len(ellipsis), 1)].rstrip() + ellipsis


def compose_message(*, customer_name: str, order_id: int, item: str, amount_text: str) -> str:
    """The order SMS, always one segment: 160 GSM-7 units, or 70 UCS-2 units when the name or
    item needs characters GSM-7 lacks. Long items are shortened first, then the greeting; the
    order id and the amount are always kept whole."""
    name = gsm_friendly(customer_name)
    item = gsm_friendly(item) or "-"
    ellipsis = "..." if is_gsm7(name + item) else "\u2026"
    first_name = _shorten(name.split(" ")[0], 20, ellipsis) if name else ""
    for template, min_item in _TEMPLATES:
        names = dict.fromkeys((name, first_name)) if name and "{name}" in template else {"": None}
        for who in names:
            for length in range(len(item), min(min_item, len(item)) - 1, -1):
                text = template.format(
                    name=who,
                    order_id=order_id,
                    item=_shorten(item, length, ellipsis),
                    amount=amount_text,
                )
                if fits_one_segment(text):
                    return text
    # Unreachable for real ids and amounts (the last template fits with a 1-character item).
    return f"Order #{order_id}: KES {amount_text}"
