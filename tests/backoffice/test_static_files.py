"""The image's way of serving the back-office's static files: `collectstatic` into
DJANGO_STATIC_ROOT (Dockerfile), WhiteNoise serving from there, compressed copies included."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client


def test_collected_files_are_served_compressed(settings, tmp_path) -> None:
    settings.STATIC_ROOT = str(tmp_path)
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "admin" / "css" / "base.css.gz").is_file()
    client = Client()  # a new handler: WhiteNoise reads the settings when it is built
    for path in ("/static/admin/css/base.css", "/static/backoffice/signin.css"):
        response = client.get(path, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200, path
        assert response["Content-Encoding"] == "gzip"
    assert client.get("/static/admin/css/nothing-here.css").status_code == 404
