-- wrk script: replays pre-signed CodePay requests (presign.py) straight at the simulator, to measure
-- the simulator's own latency at a given concurrency. Env: BENCH_BODIES (one JSON body a line),
-- BENCH_THREADS (wrk -t). Threads take disjoint slices; each body is sent once (unique order no).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local bodies = {}
local next_body = 1
statuses = {}
not_ok = 0

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if i % nthreads == tid - 1 then table.insert(bodies, line) end
    i = i + 1
  end
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  local body = bodies[next_body]
  if body == nil then
    wrk.thread:stop()
    body = "{}"
  end
  next_body = next_body + 1
  return wrk.format("POST", "/api/entry", headers, body)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
  if not string.find(body, '"code":"0"', 1, true) then not_ok = not_ok + 1 end
end

function done(summary, latency, requests)
  local agg, bad = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
    bad = bad + t:get("not_ok")
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, '"' .. k .. '":' .. v) end
  local secs = summary.duration / 1e6
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"mean_ms":%.3f,"socket_errors":%d,"timeouts":%d,"unexpected_status_body":%d,' ..
    '"statuses":{%s}}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    bad, table.concat(parts, ",")))
end
