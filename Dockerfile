# syntax=docker/dockerfile:1.7
# Duka image: one image for every Procfile process type (release, web, worker).
#   web (default):  gunicorn -c backend/gunicorn.conf.py backend.wsgi
#   release:        python manage.py migrate --noinput
#   worker:         dramatiq backend.jobs.worker
# Base images are pinned by tag and by digest (the multi-architecture index); Renovate
# (renovate.json, docker:pinDigests) proposes new digests and versions as pull requests.

# ---- build stage: resolve the locked runtime dependencies into /app/.venv ----------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build
# uv from PyPI, the version that wrote uv.lock, pinned by the sha256 of its linux wheels (x86_64,
# aarch64): pip refuses any other file. Renovate bumps UV_VERSION (regex manager); the hashes of
# a new version come from `pip download --no-deps --only-binary=:all: --platform
# manylinux_2_17_x86_64 uv==<version>` (and aarch64), and the build fails closed until they match.
# renovate: datasource=pypi depName=uv
ARG UV_VERSION=0.13.9
RUN printf 'uv==%s --hash=sha256:%s --hash=sha256:%s\n' "${UV_VERSION}" \
      d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19 \
      5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe >/tmp/uv-requirements.txt \
 && pip install --no-cache-dir --disable-pip-version-check --require-hashes -r /tmp/uv-requirements.txt \
 && rm /tmp/uv-requirements.txt
# Compile bytecode at install time (the runtime root filesystem is read-only), copy rather than
# hard-link out of the cache mount, and never download another interpreter: use the base image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, so that code changes reuse this layer.
COPY pyproject.toml uv.lock .python-version ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY backend ./backend
COPY manage.py Procfile ./
# `[tool.uv] package = false`: this only re-checks the lock; the code itself is compiled below.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && /app/.venv/bin/python -m compileall -q -j 0 backend manage.py
# The back-office's and the docs page's static files, collected (with compressed copies) into
# /app/staticfiles for WhiteNoise. Settings need a database URL, a key and an issuer to load; none
# is used here (no connection is made) and none of these values reaches the runtime image.
RUN DJANGO_STATIC_ROOT=/app/staticfiles \
    DJANGO_SECRET_KEY=collectstatic-only DATABASE_URL=postgres://build@127.0.0.1:1/none \
    OIDC_ISSUER=https://issuer.invalid OIDC_AUDIENCE=collectstatic-only \
    /app/.venv/bin/python manage.py collectstatic --noinput --verbosity 0

# ---- runtime stage -------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS runtime
ARG APP_UID=10001
LABEL org.opencontainers.image.title="duka" \
      org.opencontainers.image.description="Customers and orders API with SMS order notifications"
RUN groupadd --gid "${APP_UID}" duka \
 && useradd --uid "${APP_UID}" --gid duka --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin duka \
 && mkdir -p /var/lib/duka/prometheus \
 && chown duka:duka /var/lib/duka/prometheus \
 && chmod 1777 /var/lib/duka/prometheus
# PROMETHEUS_MULTIPROC_DIR must exist before gunicorn starts (the web wipes it at start); it is
# an emptyDir/tmpfs mount in Kubernetes and in the Ansible units. Mode 1777 because podman gives
# a tmpfs mounted there this directory's mode (not `mode=`), and the app may run as any uid. The worker keeps its metric
# files in a per-run directory under /tmp (backend/jobs/worker.py).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    METRICS_PORT=9191 \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/duka/prometheus \
    DJANGO_STATIC_ROOT=/app/staticfiles
WORKDIR /app
# Code and venv stay owned by root: the app user can read but not modify them.
COPY --from=build /app /app
USER ${APP_UID}:${APP_UID}
EXPOSE 8000 9191
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
CMD ["gunicorn", "-c", "backend/gunicorn.conf.py", "backend.wsgi"]
