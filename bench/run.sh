#!/usr/bin/env bash
# Runs Portier's benchmarks beside their peers, in the same run, on the same
# Chromium, and prints the figures side by side. Not part of `make test`:
# timings on a shared 2-core machine are for reading, not for asserting.
#   bench/run.sh [cdp|claim] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
which=${1:-cdp}
n=${2:-10000}

if [ ! -d "$here/node_modules/puppeteer-core" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent)
fi
mkdir -p "$here/out"

case "$which" in
cdp)
  out="$here/out/cdp.jsonl"
  : > "$out"
  echo "bench/cdp: $n x Runtime.evaluate(\"1\") round trips, 1 and 8 sessions" >&2
  "$root/build/bench/bench_cdp" "$n" >> "$out"
  node "$here/cdp/bench_cdp.mjs" "$n" >> "$out"
  node - "$out" <<'JS'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const pad = (s, n) => String(s).padStart(n);
console.log(['peer'.padEnd(10), pad('sessions', 8), pad('calls/s', 9), pad('p50 us', 8),
  pad('p99 us', 8), pad('per-call us', 12), pad('peak RSS MB', 12), pad('errors', 7)].join(' '));
for (const r of rows) {
  const perCall = (r.seconds * 1e6 / r.calls * r.sessions).toFixed(1);
  console.log([r.peer.padEnd(10), pad(r.sessions, 8), pad(r.calls_per_s, 9), pad(r.p50_us, 8),
    pad(r.p99_us, 8), pad(perCall, 12), pad((r.peak_rss_kb / 1024).toFixed(1), 12),
    pad(r.errors, 7)].join(' '));
}
for (const s of [1, 8]) {
  const a = rows.find((r) => r.peer === 'portier' && r.sessions === s);
  const b = rows.find((r) => r.peer === 'puppeteer' && r.sessions === s);
  if (a && b) console.log(`sessions=${s}: portier/puppeteer throughput ${(a.calls_per_s / b.calls_per_s).toFixed(2)}x, p50 ${(a.p50_us / b.p50_us).toFixed(2)}x`);
}
JS
  ;;
claim)
  n=${2:-10}
  out="$here/out/claim.jsonl"
  : > "$out"
  port=18091
  "$root/build/portier" portal --listen 127.0.0.1:$port >/dev/null 2>&1 &
  portal_pid=$!
  trap 'kill $portal_pid 2>/dev/null' EXIT
  sleep 1
  echo "bench/claim: the sandbox claim, $n times one at a time" >&2
  "$root/build/bench/bench_claim" "http://127.0.0.1:$port" "$n" >> "$out"
  node "$here/claim/claim.mjs" "http://127.0.0.1:$port" "$n" >> "$out"
  node - "$out" <<'JS'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const pad = (s, n) => String(s).padStart(n);
console.log(['peer'.padEnd(10), pad('claims', 7), pad('done', 5), pad('median s', 9), pad('p90 s', 7),
  pad('CPU s', 7), pad('peak RSS MB', 12)].join(' '));
for (const r of rows) console.log([r.peer.padEnd(10), pad(r.claims, 7), pad(r.completed, 5),
  pad(r.median_s, 9), pad(r.p90_s, 7), pad(r.cpu_s, 7), pad((r.peak_rss_kb / 1024).toFixed(1), 12)].join(' '));
const a = rows.find((r) => r.peer === 'portier'), b = rows.find((r) => r.peer === 'puppeteer');
if (a && b) console.log(`median per claim: portier/puppeteer ${(a.median_s / b.median_s).toFixed(2)}x`);
JS
  ;;
*)
  echo "bench/run.sh: unknown benchmark '$which'" >&2
  exit 2
  ;;
esac
