-- wrk script: POST {"name":"bench"} (a service account with its first key) to the URL given
-- on the wrk command line; the admin key comes in with -H "Authorization: Bearer …".
-- At the end prints one machine-readable line for bench/create_throughput.sh:
--   wrk_result requests=N duration_s=S rate=R non2xx=N connect=N read=N write=N timeout=N p50_ms=… p99_ms=…
-- (wrk counts any status >= 400 in non2xx, reported by wrk itself as "Non-2xx or 3xx responses".)

wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "wrk_result requests=%d duration_s=%.2f rate=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, secs, summary.requests / secs, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
