-- wrk script: POST /tasks with the reference quickstart's body, authenticated.
-- The key comes from the environment (PORTIER_API_KEY), never the command line.
wrk.method = "POST"
wrk.body = '{"type": "submit_claim", "data": "member_id: 300059049\\npatient: Louise Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: 2025-03-25"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PORTIER_API_KEY")

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format('{"requests": %d, "seconds": %.2f, "rps": %.0f, "p50_ms": %.2f, "p99_ms": %.2f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
