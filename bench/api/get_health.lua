-- wrk script: GET /healthz, the HTTP layer's ceiling on the same server.
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %.2f, "rps": %.0f, "p50_ms": %.2f, "p99_ms": %.2f, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
