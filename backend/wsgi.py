"""WSGI entry point for the production server."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings.base")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # One clear line naming the variable, then a non-zero exit (gunicorn preloads this module).
    print(f"configuration error: {exc}", file=sys.stderr)
    sys.exit(2)
