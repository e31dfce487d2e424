"""The transaction every command handler runs in."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import NotSupportedError, transaction

from backend.errors import is_stale_plan

P = ParamSpec("P")
R = TypeVar("R")


def handler(function: Callable[P, R]) -> Callable[P, R]:
    """Run a command handler as one durable transaction (it owns it: never nested).

    A transaction that failed because a migration applied by another process outdated a
    statement this connection had prepared wrote nothing, and its rollback made psycopg forget
    its prepared statements: it runs once more, so an older process serving while a release
    widens a column answers every request."""
    atomic = transaction.atomic(durable=True)(function)

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return atomic(*args, **kwargs)
        except NotSupportedError as exc:
            if not is_stale_plan(exc):
                raise
            return atomic(*args, **kwargs)

    return run
