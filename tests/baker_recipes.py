from __future__ import annotations

from itertools import count

from model_bakery.recipe import Recipe, seq

from backend.commands.models import Customer

_phones = count(1)

customer = Recipe(
    Customer,
    name=seq("Customer "),
    code=seq("C-"),
    phone_number=lambda: f"+2547{next(_phones) + 10000000:08d}",
)
