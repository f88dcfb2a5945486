-- wrk script: POST /v1/payments with a unique merchant_order_id (and Idempotency-Key) per request.
-- Env: BENCH_KEY (merchant API key), BENCH_MODE (mpm|cpm), BENCH_RUN (prefix unique per phase),
--      BENCH_CODES (CPM: file of single-use auth codes, one a line), BENCH_THREADS (wrk -t).
-- (Counters are globals: thread:get reads only globals.) Each wrk thread has its own Lua state, so uniqueness is thread id + a per-thread counter, and
-- CPM threads take disjoint slices of the code pool (codes are single use at the simulator).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local key = os.getenv("BENCH_KEY")
local mode = os.getenv("BENCH_MODE") or "mpm"
local run = os.getenv("BENCH_RUN") or "r"
local counter = 0
local codes = {}
local next_code = 1
statuses = {}
not_final = 0
pool_exhausted = 0

function init(args)
  if mode == "cpm" then
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    local i = 0
    for line in io.lines(os.getenv("BENCH_CODES")) do
      if i % nthreads == tid - 1 then
        table.insert(codes, line)
      end
      i = i + 1
    end
  end
end

local headers = {
  ["Authorization"] = "Bearer " .. (key or ""),
  ["Content-Type"] = "application/json",
}

function request()
  counter = counter + 1
  local id = run .. "-" .. tid .. "-" .. counter
  headers["Idempotency-Key"] = id
  local body
  if mode == "cpm" then
    local code = codes[next_code]
    if code == nil then
      -- Out of codes: reusing one would measure E04202 errors, not payments.
      pool_exhausted = 1
      wrk.thread:stop()
      code = "000000000000000000"
    end
    next_code = next_code + 1
    body = '{"mode":"cpm","amount":800,"currency":"USD","merchant_order_id":"' .. id ..
      '","wallet":"alipay","auth_code":"' .. code .. '"}'
  else
    body = '{"mode":"mpm","amount":1250,"currency":"USD","merchant_order_id":"' .. id ..
      '","wallet":"alipay","expires_in":900}'
  end
  return wrk.format("POST", "/v1/payments", headers, body)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 300 then
    local want = (mode == "cpm") and '"status":"succeeded"' or '"status":"pending"'
    if not string.find(body, want, 1, true) then
      not_final = not_final + 1
    end
  end
end

function done(summary, latency, requests)
  local agg = {}
  local wrong, exhausted = 0, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end
    wrong = wrong + t:get("not_final")
    exhausted = exhausted + t:get("pool_exhausted")
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, '"' .. k .. '":' .. v) end
  local secs = summary.duration / 1e6
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"mean_ms":%.3f,"socket_errors":%d,"timeouts":%d,"unexpected_status_body":%d,' ..
    '"pool_exhausted_threads":%d,"statuses":{%s}}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    wrong, exhausted, table.concat(parts, ",")))
end
