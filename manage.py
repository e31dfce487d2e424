#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def _quickstart_defaults(argv: list[str]) -> None:
    """The quick start is a development server on embedded defaults, on the port it serves."""
    os.environ.setdefault("DJANGO_DEBUG", "1")
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            os.environ.setdefault("PORT", argv[i + 1])
        elif arg.startswith("--port="):
            os.environ.setdefault("PORT", arg.split("=", 1)[1])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.base")
    if len(sys.argv) > 1 and sys.argv[1] == "quickstart":
        _quickstart_defaults(sys.argv[2:])
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration error is one clear line, not a traceback.
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
