-- wrk script for `cargo xtask bench`: POST /deploy with `Authorization: Bearer <token>`.
--   wrk ... -s wrk.lua URL -- TOKENS_FILE [MAX_REQUESTS]
-- TOKENS_FILE holds one token a line. One token: a static request (wrk's fast path), the hot
-- path. More: each request takes the next token, round robin (the cold path: more distinct tokens
-- than any cache holds). MAX_REQUESTS > 0 stops the thread after that many responses (the smoke
-- run). `done` prints one line `BENCH_RESULT {json}` that the bench parses.
wrk.method = "POST"

local tokens = {}
local next_token = 0
local responses = 0
local max_requests = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  max_requests = tonumber(args[2] or "0") or 0
  if #tokens == 1 then
    wrk.headers["Authorization"] = tokens[1]
  elseif #tokens > 1 then
    -- Defined only here: a script with `request` makes every request dynamic.
    request = function()
      next_token = next_token % #tokens + 1
      return wrk.format(nil, nil, { ["Authorization"] = tokens[next_token] })
    end
  end
  if max_requests > 0 then
    response = function(status, headers, body)
      responses = responses + 1
      if responses >= max_requests then wrk.thread:stop() end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
