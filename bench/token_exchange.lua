-- wrk script for bench/token_exchange.sh: POSTs the same prepared request again and again and
-- checks each status.
--
--   wrk -t1 -c8 -d10s -s bench/token_exchange.lua http://127.0.0.1:PORT/oauth/token \
--       -- BODYFILE CONTENT_TYPE EXPECT [AUTHORIZATION]
--
-- At the end prints: wrk_result requests=N rate=R unexpected=N p50_ms=… p99_ms=…

local body, content_type, expect, authorization
unexpected, first_unexpected = 0, 0
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local f = assert(io.open(args[1], "r"))
    body = f:read("*a"):gsub("%s+$", "")
    f:close()
    content_type = args[2]
    expect = tonumber(args[3])
    authorization = args[4]
end

-- BENCH_METHOD=GET (the /healthz baseline) sends no body.
local method = os.getenv("BENCH_METHOD") or "POST"

function request()
    if method == "GET" then
        return wrk.format("GET", nil, {})
    end
    local headers = { ["Content-Type"] = content_type }
    if authorization then
        headers["Authorization"] = authorization
    end
    return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
    if status ~= expect then
        unexpected = unexpected + 1
        if first_unexpected == 0 then
            first_unexpected = status
        end
    end
end

function done(summary, latency, requests)
    -- Each thread counts in its own Lua state: add them up here.
    local unexpected, first_unexpected = 0, 0
    for _, t in ipairs(threads) do
        unexpected = unexpected + t:get("unexpected")
        if first_unexpected == 0 then
            first_unexpected = t:get("first_unexpected")
        end
    end
    io.write(string.format(
        "wrk_result requests=%d rate=%.1f unexpected=%d first_unexpected=%d errors=%d p50_ms=%.3f p99_ms=%.3f\n",
        summary.requests, summary.requests / (summary.duration / 1e6), unexpected,
        first_unexpected, summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
