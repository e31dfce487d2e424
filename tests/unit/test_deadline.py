"""The shared watchdog that bounds every gateway and webhook call."""

from __future__ import annotations

import threading
import time

from backend.integrations.deadline import Watchdog


def _wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


def test_a_deadline_fires_once_and_a_disarmed_one_never():
    watchdog = Watchdog()
    fired, spared = threading.Event(), threading.Event()
    count: list[int] = []
    watchdog.arm(0.05, lambda: (count.append(1), fired.set()))
    watchdog.arm(0.05, spared.set).disarm()

    assert _wait(fired, 5)
    time.sleep(0.2)
    assert count == [1]
    assert not spared.is_set()


def test_an_earlier_deadline_armed_later_fires_first():
    watchdog = Watchdog()
    order: list[str] = []
    done = threading.Event()
    late = watchdog.arm(30, lambda: order.append("late"))
    started = time.monotonic()
    watchdog.arm(0.05, lambda: (order.append("early"), done.set()))

    assert _wait(done, 5)
    assert time.monotonic() - started < 5  # not held back behind the 30 s one
    assert order == ["early"]
    late.disarm()


def test_one_thread_serves_every_deadline():
    watchdog = Watchdog()
    before = {t.ident for t in threading.enumerate() if t.name == "deadlines"}
    armed = [watchdog.arm(60, lambda: None) for _ in range(200)]
    ours = {t.ident for t in threading.enumerate() if t.name == "deadlines"} - before
    assert len(ours) == 1
    for deadline in armed:
        deadline.disarm()
