"""Fixtures for fuzzing the WSGI app in-process inside a pytest-django test transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from schemathesis import Case, Response

# Every table a request could write: the write models and the read models.
_APPS = ("commands", "queries")


def _tables() -> list[tuple[str, str]]:
    return sorted(
        (model._meta.db_table, model._meta.pk.column)
        for label in _APPS
        for model in apps.get_app_config(label).get_models()
    )


def table_fingerprints() -> dict[str, str]:
    """One md5 per table over all of its rows in key order: equal fingerprints, equal contents."""
    tables = _tables()
    selects = ", ".join(
        f"(SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t.{pk}), '')) FROM {table} t)"
        for table, pk in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {selects}")  # table names come from our models, not input
        row = cursor.fetchone()
    return {table: digest for (table, _), digest in zip(tables, row, strict=True)}


@pytest.fixture
def wsgi_in_transaction(db: None) -> Iterator[None]:
    """Let the real WSGI handler run inside the test's transaction.

    Django's handler closes "obsolete" connections around every request, and a connection inside
    an atomic block looks obsolete, so the first request would drop the test transaction. The
    test Client disconnects the same signal handler for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@dataclass
class RejectionGuard:
    """Checks that no 4xx answer changed a table, for every request schemathesis sends (including
    the extra ones its checks send, e.g. without credentials or with another method)."""

    requests: int = 0
    rejected: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    _before: dict[int, dict[str, str]] = field(default_factory=dict)

    def before_call(self, context: schemathesis.HookContext, case: Case, kwargs: dict) -> None:
        self._before[id(case)] = table_fingerprints()

    def after_call(self, context: schemathesis.HookContext, case: Case, response: Response) -> None:
        before = self._before.pop(id(case), None)
        self.requests += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if before is None or not 400 <= response.status_code < 500:
            return
        self.rejected += 1
        after = table_fingerprints()
        changed = sorted(table for table in before if before[table] != after[table])
        assert not changed, (
            f"{case.method} {case.formatted_path} was refused with {response.status_code} "
            f"but changed {', '.join(changed)}:\n{case.as_curl_command()}"
        )


@pytest.fixture
def rejection_guard(wsgi_in_transaction: None) -> Iterator[RejectionGuard]:
    guard = RejectionGuard()

    # Plain functions: the hook registry sets attributes on them, which bound methods refuse.
    def before_call(context: schemathesis.HookContext, case: Case, kwargs: dict) -> None:
        guard.before_call(context, case, kwargs)

    def after_call(context: schemathesis.HookContext, case: Case, response: Response) -> None:
        guard.after_call(context, case, response)

    hooks: list[Callable] = [
        schemathesis.hook("before_call")(before_call),
        schemathesis.hook("after_call")(after_call),
    ]
    try:
        yield guard
    finally:
        for hook in hooks:
            schemathesis.hooks.GLOBAL_HOOK_DISPATCHER.unregister(hook)
