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
    """Run a command handler as one transaction, or inside the caller's (the back-office's
    admin views wrap each form in one; the handler's writes then commit with the audit entry).

    A transaction that failed because a migration applied by another process outdated a
    statement this connection had prepared wrote nothing, and its rollback made psycopg forget
    its prepared statements: it runs once more, so an older process serving while a release
    widens a column answers every request."""
    atomic = transaction.atomic()(function)

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        owns = not transaction.get_connection().in_atomic_block
        try:
            return atomic(*args, **kwargs)
        except NotSupportedError as exc:
            # Only a transaction of its own rolled back whole, which makes psycopg forget.
            if not owns or not is_stale_plan(exc):
                raise
            return atomic(*args, **kwargs)

    return run
