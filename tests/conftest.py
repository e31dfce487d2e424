from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    f"tests.fixtures.{path.stem}"
    for path in sorted((Path(__file__).parent / "fixtures").glob("*.py"))
    if path.stem != "__init__"
]


@pytest.fixture(autouse=True)
def _sms_recorder_stopped() -> Iterator[None]:
    """The SMS recorder thread (backend.jobs.sms) ends with the test that started it, so no
    connection of it outlives the test's database."""
    yield
    sms = sys.modules.get("backend.jobs.sms")
    if sms is not None:
        sms.RECORDER.stop()
