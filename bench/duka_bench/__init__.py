"""Duka's benchmark, split by reason to change (`bench/run.py` is the entry point):

- `config`: paths, fixed load parameters, the run's options, the log line;
- `procs`: starting and stopping processes and services, HTTP and SQL helpers;
- `cpu`: CPU accounting of a measurement (per process group and per web process), the wait
  for a quiet machine;
- `load`: the wrk runs (per size and endpoint), the SMS burst, the outbox drain;
- `profiling`: py-spy sampling during a measurement;
- `report`: CPU per order, the targets, the markdown/JSON results;
- `cli`: the command line and the whole run;
- `floor`, `floor_urls`: settings and bench-only views for `--floor` (the web imports them, the
  service never does).
"""
