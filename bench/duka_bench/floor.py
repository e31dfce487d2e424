"""Settings for `bench/run.py --floor`: the production settings with bench-only URLs in front
(`duka_bench.floor_urls`). The web process of a `--floor` run imports this module through
`DJANGO_SETTINGS_MODULE`; the service itself never does."""

from backend.settings.base import *  # noqa: F403 - the production settings, unchanged

ROOT_URLCONF = "duka_bench.floor_urls"
