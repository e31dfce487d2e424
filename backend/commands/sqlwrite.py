"""SQL text for the hot writes, built once from the models' metadata.

A command that must cost one round trip writes its rows with one statement of data-modifying
CTEs (PostgreSQL). Its INSERT column lists come from the model, so a field added later gets its
default here as it would through `Model.objects.create`, instead of a hand-kept list drifting
from the model (tests compare the rows with the ORM's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models


@dataclass(frozen=True)
class InsertSelect:
    """`INSERT INTO <table> (<columns>) SELECT <expressions>`: the caller appends `FROM ...`.
    `defaults` are the named parameters of the columns left to their model default."""

    sql: str
    defaults: dict[str, Any]


def insert_select(
    model: type[models.Model],
    *,
    prefix: str,
    exprs: dict[str, str] | None = None,
    params: Iterable[str] = (),
) -> InsertSelect:
    """Every concrete column of `model`: those in `exprs` take that SQL expression (e.g. a value
    of another CTE), those in `params` the named parameter `%(<prefix>_<field>)s`, the others
    their model default. The primary key is left to the database unless given."""
    exprs = exprs or {}
    given = set(params)
    columns: list[str] = []
    values: list[str] = []
    defaults: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        name = field.attname if field.attname in exprs or field.attname in given else field.name
        if name in exprs:
            values.append(exprs[name])
        elif name in given:
            values.append(f"%({prefix}_{name})s")
        elif field.primary_key:
            continue
        else:
            if not field.has_default() and not field.null:
                raise ValueError(f"{model.__name__}.{field.name} needs a value")
            placeholder = f"{prefix}__default_{field.column}"
            default = field.get_default() if field.has_default() else None
            defaults[placeholder] = field.get_db_prep_save(default, connection)
            values.append(f"%({placeholder})s")
        columns.append(connection.ops.quote_name(field.column))
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)}"
    return InsertSelect(sql=sql, defaults=defaults)
