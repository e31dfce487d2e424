-- wrk script for the Duka benchmark, configured through the environment (never the command
-- line, so the token does not show in `ps`):
--   BENCH_TOKEN            bearer token (unset: no Authorization header, e.g. /healthz)
--   BENCH_MODE             "static" (the URL as given), "order_detail" (GET /api/v1/orders/{id}/
--                          with id uniform in BENCH_MIN_ID..BENCH_MAX_ID; BENCH_DETAIL_PREFIX
--                          for another path of that shape) or "post_order"
--                          (POST /api/v1/orders/ for a customer in BENCH_MIN_ID..BENCH_MAX_ID)
-- done() prints one line "BENCH_JSON {...}" with throughput, latency percentiles and errors.

local token = os.getenv("BENCH_TOKEN")
local mode = os.getenv("BENCH_MODE") or "static"
local min_id = tonumber(os.getenv("BENCH_MIN_ID") or "1")
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "1")
local detail_prefix = os.getenv("BENCH_DETAIL_PREFIX") or "/api/v1/orders/"

wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0) * 7919)
end

if mode == "order_detail" then
  function request()
    local id = math.random(min_id, max_id)
    return wrk.format("GET", detail_prefix .. id .. "/")
  end
elseif mode == "post_order" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local items = { "Maize flour 2kg", "Sugar 1kg", "Cooking oil 1L", "Solar lamp", "Airtime" }
  function request()
    local body = string.format(
      '{"customer_id": %d, "item": "%s", "amount": "%d.%02d"}',
      math.random(min_id, max_id), items[math.random(1, #items)],
      math.random(1, 99999), math.random(0, 99))
    return wrk.format("POST", "/api/v1/orders/", nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
