-- wrk script for scripts/wrk-checkout: POST /v1/orders, one unit of one product, with a
-- fresh Idempotency-Key per request; counts the 201s each thread saw so the runner can
-- hold them against the stock that was taken.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  product, key, run = args[1], args[2], args[3]
  counter, created, other = 0, 0, 0
  body = '{"lines":[{"product_id":"' .. product .. '","quantity":1}]}'
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/v1/orders", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("wrk-%s-%d-%d", run, id, counter),
  }, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "WRK created=%d other_status=%d socket_errors=%d requests=%d seconds=%.3f p50_ms=%.1f p99_ms=%.1f\n",
    c, o, e.connect + e.read + e.write + e.timeout, summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
