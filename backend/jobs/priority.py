"""The worker yields the CPU to the web process where the two share a host (`WORKER_NICENESS`).

An API request waits on its caller; an SMS only has to leave within seconds. On a saturated host
the worker would otherwise take as much CPU as the web (and the web's tail latency with it); the
backlog it leaves is sent in larger, cheaper batches as soon as the web idles.

Two mechanisms, because Linux schedules by both:

* the process's nice value (`setpriority`), which counts against the tasks of its own
  scheduling group: enough in a container (its own cgroup) or when web and worker were started
  in one session;
* with autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, the default of most desktop
  and many server kernels), processes of different sessions are balanced as groups, whatever
  their nice values: a worker started in its own session (foreman, systemd, the bench) must
  lower its session's group (`/proc/self/autogroup`). That group is only lowered when the
  session holds nothing but the worker's own processes and the chain that launched them, so a
  web server that shares the session is never slowed down with it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a process, or None when it is gone or unreadable."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def session_is_ours() -> bool:
    """True when every process in this one's session is the worker's own: an ancestor (the chain
    that launched it) or a descendant of its parent (the Dramatiq CLI's processes)."""
    pid = os.getpid()
    own = _stat(pid)
    if own is None:
        return False
    parent, session = own
    members: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == session:
                members[int(entry.name)] = stat[0]
    ancestors: set[int] = set()
    current = parent
    while current in members and current not in ancestors:
        ancestors.add(current)
        current = members[current]

    def descends_from_parent(member: int) -> bool:
        seen: set[int] = set()
        while member in members and member not in seen:
            if members[member] == parent:
                return True
            seen.add(member)
            member = members[member]
        return False

    return all(m in ancestors or m == pid or descends_from_parent(m) for m in members)


def _autogroup_nice() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        # "/autogroup-123 nice 10"
        return int((PROC / "self" / "autogroup").read_text().split()[-1])
    return None


def _autogroups_enabled() -> bool:
    with contextlib.suppress(OSError):
        return (PROC / "sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    return False


def yield_cpu(niceness: int) -> list[str]:
    """Lower this process's CPU priority to `niceness` (never raises it); what was done."""
    done: list[str] = []
    if niceness <= 0:
        return done
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        done.append(f"nice {os.getpriority(os.PRIO_PROCESS, 0)}")
    if _autogroups_enabled() and session_is_ours():
        current = _autogroup_nice()
        for _ in range(3):
            if current is None or current >= niceness:
                break
            try:
                (PROC / "self" / "autogroup").write_text(str(niceness))
            except OSError as exc:
                # The kernel takes one change per group every 100 ms: a sibling worker process
                # may just have made the same one (then the read below sees it).
                if exc.errno != errno.EAGAIN:
                    logger.debug("autogroup nice not changed: %s", exc)
                    break
                time.sleep(0.11)
            current = _autogroup_nice()
        if current is not None:
            done.append(f"session group nice {current}")
    return done
