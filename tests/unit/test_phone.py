import pytest

from backend.commands.phone import normalize_phone_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+254712345678", "+254712345678"),
        ("0712345678", "+254712345678"),
        ("0712 345 678", "+254712345678"),
        ("(071) 234-5678", "+254712345678"),
        ("254712345678", "+254712345678"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_common_notations_become_e164(raw, expected):
    assert normalize_phone_number(raw, region="KE") == expected


def test_region_decides_numbers_without_plus():
    assert normalize_phone_number("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize(
    "raw", ["", "hello", "123", "+2547123", "+999 1234 5678", "0712345678901234"]
)
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(ValueError, match="phone number"):
        normalize_phone_number(raw, region="KE")
