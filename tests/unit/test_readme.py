"""What a new user reads first: the quick start must work on Debian's Python, and the licence."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_quick_start_says_what_to_run_where_pip_is_externally_managed():
    section = _quick_start()
    first = re.search(r"```bash\n(.+?)\n```", section, re.S).group(1)
    if "pip install" in first:
        # PEP 668: Debian/Ubuntu's system pip refuses to install; one line must say what to run.
        [line] = [ln for ln in section.splitlines() if "externally-managed-environment" in ln]
        alternative = re.findall(r"`([^`]*uv run python manage.py quickstart[^`]*)`", line)
        assert alternative, line
        assert "pip install" not in alternative[0]


def test_project_is_mit_licensed():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert "[LICENSE](LICENSE)" in (ROOT / "README.md").read_text()
