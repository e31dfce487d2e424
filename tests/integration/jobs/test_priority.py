"""The worker lowers its CPU priority below the web's (`backend.jobs.priority`, WORKER_NICENESS).

Real processes in real sessions: a launcher in a session of its own stands in for the Procfile's
shell, a child for the Dramatiq CLI and a grandchild for a worker process, which calls
`yield_cpu` and reports what the kernel then says about it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="needs Linux's /proc (autogroup support)"
)

ROOT = Path(__file__).resolve().parents[3]

# The worker process: lowers itself, then reports its nice value and its session group's.
WORKER = textwrap.dedent(
    """
    import json, os, sys
    from backend.jobs.priority import yield_cpu
    done = yield_cpu(int(sys.argv[1]))
    group = open("/proc/self/autogroup").read().split()
    print(json.dumps({"done": done, "nice": os.getpriority(os.PRIO_PROCESS, 0),
                      "group": group[0], "group_nice": int(group[-1])}), flush=True)
    """
)
# The CLI: runs one worker process and passes its report on.
CLI = "import subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]])"
# The launcher, optionally with a foreign process in the session (a web server started by the
# same supervisor) that is neither an ancestor nor a sibling of the worker.
LAUNCHER = textwrap.dedent(
    """
    import subprocess, sys
    foreign = subprocess.Popen(["sleep", "30"]) if sys.argv[4] == "foreign" else None
    try:
        subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]])
    finally:
        if foreign is not None:
            foreign.kill()
            foreign.wait()
    """
)


def run_worker(niceness: int, *, foreign: bool = False) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, CLI, WORKER, str(niceness), "foreign" if foreign else "-"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,  # as foreman, systemd or the bench start a process type
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def autogroups_on() -> bool:
    return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"


def test_a_worker_in_its_own_session_lowers_itself_and_its_session_group():
    report = run_worker(7)
    assert report["nice"] == 7
    if autogroups_on():
        # Autogroups balance sessions against each other: the process's nice alone would not
        # make it yield to a web server in another session.
        assert report["group_nice"] == 7
        assert "session group nice 7" in report["done"]
    assert "nice 7" in report["done"]


def test_a_session_shared_with_another_process_keeps_its_group_priority():
    report = run_worker(7, foreign=True)
    assert report["nice"] == 7  # within the shared group, the nice value is what counts
    assert report["group_nice"] == 0
    assert not any(step.startswith("session group") for step in report["done"])


def test_zero_leaves_the_priority_alone():
    report = run_worker(0)
    assert report == {**report, "done": [], "nice": 0, "group_nice": 0}
