-- wrk script for bench/auth_check.sh: sends `Authorization: Bearer <key>` with a key taken from
-- a file, to the URL on the wrk command line (/v1/auth/check, or /healthz for the ceiling run,
-- which gets the same headers so that wrk does the same work per request in every run), and
-- checks every response's status.
--
--   wrk -t2 -c16 -d10s -s bench/auth_check.lua http://127.0.0.1:PORT/v1/auth/check \
--       -- KEYFILE EXPECT MODE THREADS [nocheck]
--
--   KEYFILE  one key per line
--   EXPECT   the only acceptable status (204 valid keys, 401 bogus keys, 429 keys over a
--            limit, 200 /healthz)
--   BENCH_MODEL (environment), when set, is sent as X-Keyplane-Model with every request
--   MODE     random: each request picks a key at random from the whole file
--            seq:    thread i walks lines i, i+THREADS, i+2*THREADS, ... in order and wraps
--                    (so no key repeats until the file is used up; wraps are counted)
--   THREADS  the -t value (needed by seq to split the file)
--   nocheck  do not define response(): wrk then skips building a Lua table of every
--            response's headers (a few microseconds of wrk CPU per response, more for
--            responses with more headers). Statuses are then only checked through wrk's own
--            counter of statuses >= 400 (status_errors): 0 for 200/204 runs, all for 401 runs.
--
-- All requests are formatted once in init(), so the per-request Lua cost is one table index
-- and is the same in every run. At the end prints one machine-readable line:
--   wrk_result requests=N duration_s=S rate=R responses=N unexpected=N first_unexpected=STATUS
--     status_errors=N connect=N read=N write=N timeout=N wraps=N keys=N
--     p50_ms=… p90_ms=… p99_ms=… p999_ms=… max_ms=…
-- With checking on, a run is only valid if unexpected=0, responses=requests and all socket
-- error counts are 0; bench/auth_check.sh enforces that. (wrk's own status_errors, reported by
-- wrk as "Non-2xx or 3xx responses", counts every status >= 400, which is every response of a
-- bogus-key run; it cannot tell 401 from 503.)

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local reqs = {}
local n = 0
local pos = 0
local mode = "random"
local expect = 0
responses = 0
unexpected = 0
first_unexpected = 0
wraps = 0
keys = 0

function init(args)
  local file, nthreads = args[1], tonumber(args[4] or "1")
  if args[5] == "nocheck" then
    response = nil
  end
  expect = tonumber(args[2] or "")
  mode = args[3] or "random"
  if not file or not expect then
    error("usage: -- KEYFILE EXPECT random|seq THREADS [nocheck]")
  end
  if mode ~= "random" and mode ~= "seq" then
    error("unknown mode " .. mode)
  end
  local tid = tid or 0
  local headers = {}
  -- BENCH_MODEL: sent as X-Keyplane-Model (admission runs: which project x model limit).
  local model = os.getenv("BENCH_MODEL")
  if model and model ~= "" then
    headers["X-Keyplane-Model"] = model
  end
  local i = 0
  for line in io.lines(file) do
    if line ~= "" then
      -- random mode: every thread holds the whole file; seq: its own share only.
      if mode == "random" or i % nthreads == tid then
        headers["Authorization"] = "Bearer " .. line
        n = n + 1
        reqs[n] = wrk.format(nil, nil, headers)
      end
      i = i + 1
    end
  end
  if n == 0 then
    error("no keys for thread " .. tid .. " in " .. file)
  end
  keys = n
  math.randomseed(os.time() * 1000 + tid * 7919)
end

function request()
  if mode == "random" then
    return reqs[math.random(n)]
  end
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return reqs[pos]
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= expect then
    unexpected = unexpected + 1
    if first_unexpected == 0 then
      first_unexpected = status
    end
  end
end

function done(summary, latency, requests)
  local tot = { responses = 0, unexpected = 0, wraps = 0, keys = 0 }
  local first = 0
  local exp = 0
  for _, t in ipairs(threads) do
    tot.responses = tot.responses + (t:get("responses") or 0)
    tot.unexpected = tot.unexpected + (t:get("unexpected") or 0)
    tot.wraps = tot.wraps + (t:get("wraps") or 0)
    tot.keys = tot.keys + (t:get("keys") or 0)
    local f = t:get("first_unexpected") or 0
    if first == 0 and f ~= 0 then
      first = f
    end
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  local ms = function(p) return latency:percentile(p) / 1000 end
  io.write(string.format(
    "wrk_result requests=%d duration_s=%.2f rate=%.1f responses=%d unexpected=%d first_unexpected=%d status_errors=%d connect=%d read=%d write=%d timeout=%d wraps=%d keys=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
    summary.requests, secs, summary.requests / secs, tot.responses, tot.unexpected, first,
    e.status, e.connect, e.read, e.write, e.timeout, tot.wraps, tot.keys,
    ms(50), ms(90), ms(99), ms(99.9), latency.max / 1000))
end
