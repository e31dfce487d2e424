"""py-spy sampling of the web (and, for writes, the SMS worker) during a measurement."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from .config import RESULTS, ROOT, log
from .procs import Proc


def start_profiler(proc: Proc, seconds: float, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy (from PyPI, through `uv tool run`) samples a process tree during the run."""
    exe = shutil.which("py-spy")
    argv = [exe] if exe else ["uv", "tool", "run", "py-spy"]
    out = RESULTS / f"profile-{name}.txt.tmp"
    argv += ["record", "--pid", str(proc.popen.pid), "--subprocesses", "--format", "raw"]
    argv += ["--nonblocking", "--duration", str(max(1, round(seconds) - 1)), "--output", str(out)]
    popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return popen, out


def finish_profiler(popen: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    try:
        popen.wait(60)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(5)
    summary = summarize_profile(out) if out.exists() else {}
    log(f"profile: {out.relative_to(ROOT)} ({summary.get('samples', 0)} samples), top self time:")
    for frame, share in list(summary.get("self", {}).items())[:12]:
        log(f"  {share:5.1f}%  {frame}")
    return {"file": str(out.relative_to(ROOT)), **summary}


def _frame(raw: str) -> str:
    """`handle (django/core/handlers/base.py:181)` -> `handle (handlers/base.py)`."""
    name, sep, where = raw.partition(" (")
    if not sep:
        return raw
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def summarize_profile(path: Path, top: int = 40) -> dict[str, Any]:
    """Inclusive and self shares of the sampled frames (py-spy's collapsed-stack format)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")[1:]]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(table: dict[str, int]) -> dict[str, float]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return {frame: round(100 * n / max(total, 1), 1) for frame, n in ranked}

    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}
