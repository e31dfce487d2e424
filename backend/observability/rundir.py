"""Per-run metric directories for the Dramatiq worker (imports nothing of prometheus_client:
the directory must be chosen before that library is first imported)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_RUN_NAME = re.compile(r"(\d+)-(\d+|unknown)")


def process_start(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, from /proc), or None when unknown. With the
    pid it names one run: a restarted container's CLI is pid 1 again, but starts later."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # Field 22, counted after the parenthesised command name (which may hold spaces).
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def run_name(pid: int) -> str:
    return f"{pid}-{process_start(pid) or 'unknown'}"


def is_stale_run(name: str) -> bool:
    """True for the directory of a run whose process is gone (only names `run_name` makes)."""
    match = _RUN_NAME.fullmatch(name)
    if match is None:
        return False
    pid = int(match.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return match.group(2) != (process_start(pid) or "unknown")


def run_directory(root: Path, owner_pid: int) -> Path:
    """A fresh directory under `root` for the run of `owner_pid` (the dramatiq CLI, parent of
    every worker and fork process), so counters of an earlier run never leak in.

    Every process of one run computes the same name from the owner's pid and start time, so
    none has to wipe a directory the others may be writing. Directories of earlier runs are
    removed, including one of an earlier process with the same pid (pid 1 in a restarted
    container, whose /tmp survives); those of runs still alive are kept."""
    root.mkdir(parents=True, exist_ok=True)
    current = run_name(owner_pid)
    for other in root.iterdir():
        if other.name != current and other.is_dir() and is_stale_run(other.name):
            shutil.rmtree(other, ignore_errors=True)
    path = root / current
    path.mkdir(exist_ok=True)
    return path
