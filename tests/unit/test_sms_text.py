"""Order SMS text: contract wording, always one segment, id and amount never cut."""

from __future__ import annotations

import random

import pytest

from backend.notifications.sms_text import (
    GSM7_SEGMENT,
    UCS2_SEGMENT,
    compose_message,
    fits_one_segment,
    is_gsm7,
    sms_units,
)


def test_short_order_reads_like_the_contract_example():
    text = compose_message(
        customer_name="Jane", order_id=1042, item="Widget", amount_text="1500.00"
    )

    assert text == "Hi Jane, we received your order #1042: Widget, KES 1500.00. Thank you!"
    assert sms_units(text) == (len(text), GSM7_SEGMENT)


def test_long_item_is_shortened_but_id_and_amount_are_whole():
    item = "Extra large stainless steel cooking pot with glass lid " * 4
    text = compose_message(
        customer_name="Jane Wanjiku",
        order_id=123456789012,
        item=item[:200],
        amount_text="9999999999.99",
    )

    used, limit = sms_units(text)
    assert limit == GSM7_SEGMENT
    assert used <= GSM7_SEGMENT
    assert "#123456789012" in text
    assert "KES 9999999999.99" in text
    assert "Extra large stainless steel" in text
    assert "..." in text


def test_non_gsm_characters_switch_to_the_70_unit_ucs2_limit():
    text = compose_message(
        customer_name="李小龙",
        order_id=987654,
        item="功夫茶具套装 deluxe edition",
        amount_text="2500.00",
    )

    used, limit = sms_units(text)
    assert limit == UCS2_SEGMENT
    assert used <= UCS2_SEGMENT
    assert "#987654" in text
    assert "KES 2500.00" in text
    assert "功夫" in text


def test_emoji_count_as_two_ucs2_units():
    assert sms_units("☕") == (1, UCS2_SEGMENT)
    assert sms_units("😀") == (2, UCS2_SEGMENT)
    text = compose_message(customer_name="Amina", order_id=5, item="😀" * 60, amount_text="1.00")
    assert fits_one_segment(text)
    assert text.count("😀") >= 1


def test_gsm_extension_characters_count_double():
    assert sms_units("{}") == (4, GSM7_SEGMENT)
    assert sms_units("€") == (2, GSM7_SEGMENT)
    text = compose_message(customer_name="Jo", order_id=1, item="[" * 200, amount_text="1.00")
    used, limit = sms_units(text)
    assert limit == GSM7_SEGMENT
    assert used <= GSM7_SEGMENT
    assert len(text) < GSM7_SEGMENT  # the brackets took two units each


def test_typographic_punctuation_and_accents_stay_gsm7():
    text = compose_message(
        customer_name="Zoë O’Brien",  # noqa: RUF001 - typographic on purpose
        order_id=7,
        item="“Deluxe” mug – blue…",  # noqa: RUF001 - typographic on purpose
        amount_text="3.50",
    )

    assert is_gsm7(text)
    assert "Zoe O'Brien" in text
    assert '"Deluxe" mug - blue...' in text


@pytest.mark.parametrize("seed", range(5))
def test_random_names_and_items_always_fit_one_segment(seed):
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-{}[]€éüñßçŁłąęśćżź中文字😀☕ʼ’“”"  # noqa: RUF001
    for _ in range(200):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))).strip() or "X"
        item = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))).strip() or "Y"
        order_id = rng.randint(1, 10**15)
        amount = f"{rng.randint(1, 10**12 - 1) / 100:.2f}"

        text = compose_message(customer_name=name, order_id=order_id, item=item, amount_text=amount)

        assert fits_one_segment(text), text
        assert f"#{order_id}" in text
        assert f"KES {amount}" in text
