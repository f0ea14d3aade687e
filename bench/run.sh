#!/usr/bin/env bash
# Runs Portier's benchmarks beside their peers, in the same run, on the same
# Chromium, and prints the figures side by side. Not part of `make test`:
# timings on a shared 2-core machine are for reading, not for asserting.
#   bench/run.sh [cdp|claim|claims|trajectory|stalls|api|api-nodes|store|ui] [N]
#   bench/run.sh api|api-nodes [SECONDS] [sqlite|pg]; bench/run.sh store [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
which=${1:-cdp}
n=${2:-10000}

if [ ! -d "$here/node_modules/puppeteer-core" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent)
fi
mkdir -p "$here/out"

# A durable PostgreSQL of the bench's own in $1/pg (fsync and
# synchronous_commit on, its defaults), on a unix socket there: sets pg_db
# and pg_stop, and a master key for the run (PostgreSQL needs one given).
# initdb and postgres refuse root: as root they run as nobody.
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; else "$@"; fi; }
pg_start() {
  local dir=$1/pg pgbin
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  chmod 755 "$1"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown nobody:nogroup "$dir"
  as_pg "$pgbin/initdb" -D "$dir/data" -U portier -A trust -E UTF8 --locale=C >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-k $dir -p 5432 -c listen_addresses= -c max_connections=200" start >/dev/null
  pg_stop="as_pg $pgbin/pg_ctl -D $dir/data -m fast stop"
  pg_db="host=$dir port=5432 user=portier dbname=postgres"
  PORTIER_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export PORTIER_MASTER_KEY
}
pg_stop=:

# Holds process $1 (every thread) to $3 percent of a core, in a cgroup $2
# of the bench's own (v2 cpu.max, else v1 cfs quota); 1 where neither is
# writable. cpu_release removes the groups (their processes gone first).
cpu_groups=""
cpu_limit() {
  local g
  # v2: the root must hand the cpu controller down to its children
  # (listed in cgroup.subtree_control, not only available in
  # cgroup.controllers), else a child has no cpu.max
  if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
     { grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
       echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; }; then
    g=/sys/fs/cgroup/portier-bench-$2
    mkdir -p "$g" 2>/dev/null || return 1
    cpu_groups="$cpu_groups $g" # from here on cpu_release removes it
    echo "$(($3 * 1000)) 100000" > "$g/cpu.max" 2>/dev/null || return 1
  elif [ -d /sys/fs/cgroup/cpu ]; then
    g=/sys/fs/cgroup/cpu/portier-bench-$2
    mkdir -p "$g" 2>/dev/null || return 1
    cpu_groups="$cpu_groups $g"
    echo $(($3 * 1000)) > "$g/cpu.cfs_quota_us" 2>/dev/null || return 1
  else
    return 1
  fi
  echo "$1" > "$g/cgroup.procs" 2>/dev/null
}
cpu_release() { local g; for g in $cpu_groups; do rmdir "$g" 2>/dev/null || true; done; }

# The API benches' database in $1 (SQLite, or with $2 = pg a PostgreSQL of
# their own) with the bench account and its claim SOP: sets db, dbflags
# (what `serve` needs beside --db) and key.
api_setup() {
  db="$1/api.db"
  dbflags=()
  if [ "$2" = pg ]; then
    pg_start "$1"
    db=$pg_db
    dbflags=(--data-dir "$1/data")
  fi
  key=$("$root/build/portier" account create bench --db "$db" |
        sed -n 's/.*"api_key":[[:space:]]*"\([^"]*\)".*/\1/p')
  "$root/build/portier" account set-sop bench submit_claim "$root/sops/sandbox/submit_claim.sop" \
    --db "$db" > /dev/null
}

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
claims)
  # N claims through the task API: fresh context per task (serve
  # --session-max-age 0) and kept sessions (serve's defaults, plus
  # ${PORTIER_REUSE_FLAGS} if set), 1 and 4 workers each, against Puppeteer
  # at concurrency 1 and 4 and the raw-CDP floor (fresh context per claim,
  # or signed-in sessions reused; 1 and 4 at a time), on the same sandbox
  # (the demo's) and Chromium. Kept sessions twice: `reuse`, their sign-ins
  # inside the clock (one per worker in N claims), then `warm`, N more on
  # the sessions that run left signed in (the raw-CDP floor's `warm` signs
  # in before its clock starts). For each Portier row: the sandbox's sign-ins
  # during it, and the portier process's RSS and CPU beside its Chromium's.
  n=${2:-40}
  out="$here/out/claims.jsonl"
  : > "$out"
  work=$(mktemp -d)
  serve_pid=
  trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  runs="1:fresh 4:fresh 1:reuse 4:reuse"
  for run in $runs; do
    w=${run%%:*} mode=${run#*:} extra="--session-max-age 0"
    [ "$mode" = reuse ] && extra=${PORTIER_REUSE_FLAGS:-}
    : > "$work/banner"
    # shellcheck disable=SC2086 # the extra flags are words
    "$root/build/portier" serve --demo --db "$work/bench.db" --listen 127.0.0.1:18095 \
      --portal-listen 127.0.0.1:18096 --workers "$w" $extra > "$work/banner" 2> "$work/log" &
    serve_pid=$!
    for _ in $(seq 100); do
      grep -q PORTIER_WEBHOOK_SECRET "$work/banner" && break
      kill -0 $serve_pid 2>/dev/null || break
      sleep 0.1
    done
    key=$(sed -n 's/^export PORTIER_API_KEY=//p' "$work/banner")
    if [ -z "$key" ]; then
      why=$(tail -1 "$work/log")
      echo "bench/claims: portier serve --workers $w $extra did not start: $why" >&2
      echo '{"peer":"portier","mode":"'"$mode"'","concurrency":'"$w"',"claims":'"$n"',"na":"serve did not start"}' >> "$out"
      kill $serve_pid 2>/dev/null || true
      wait $serve_pid 2>/dev/null || true
      serve_pid=
      continue
    fi
    echo "bench/claims: $n claims through the API, $w worker(s), $mode" >&2
    PORTIER_API_KEY=$key PORTIER_SERVE_PID=$serve_pid PORTIER_BENCH_PORTAL=http://127.0.0.1:18096 \
      node "$here/claims/claims_api.mjs" http://127.0.0.1:18095 "$n" "$w" "$mode" >> "$out"
    if [ "$mode" = reuse ]; then
      # the same server again: its sessions are signed in now (warm)
      echo "bench/claims: $n claims through the API, $w worker(s), warm (sessions kept from the run before)" >&2
      PORTIER_API_KEY=$key PORTIER_SERVE_PID=$serve_pid PORTIER_BENCH_PORTAL=http://127.0.0.1:18096 \
        node "$here/claims/claims_api.mjs" http://127.0.0.1:18095 "$n" "$w" warm >> "$out"
    fi
    if [ "$run" = 4:fresh ]; then
      for c in 1 4; do
        echo "bench/claims: $n claims with Puppeteer, concurrency $c" >&2
        node "$here/claim/claim.mjs" http://127.0.0.1:18096 "$n" "$c" >> "$out"
      done
      for m in fresh reuse warm; do
        for c in 1 4; do
          echo "bench/claims: $n claims with raw CDP, $m, concurrency $c" >&2
          node "$here/claims/claims_cdp.mjs" http://127.0.0.1:18096 "$n" "$c" "$m" >> "$out"
        done
      done
    fi
    kill $serve_pid; wait $serve_pid 2>/dev/null || true
    serve_pid=
  done
  node - "$out" <<'JS'
const all = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const order = { portier: 0, puppeteer: 1, cdp: 2 };
all.sort((a, b) => order[a.peer] - order[b.peer] || (a.mode > b.mode) - (a.mode < b.mode) || a.concurrency - b.concurrency);
const rows = all.filter((r) => !r.na);
const pad = (s, n) => String(s ?? '-').padStart(n);
const ratio = (a, b) => (a / b).toFixed(2) + 'x';
const name = (r) => `${r.peer} ${r.mode} c=${r.concurrency}`;
console.log(['runner'.padEnd(10), 'mode'.padEnd(6), pad('concurrency', 11), pad('claims', 7), pad('done', 5),
  pad('seconds', 8), pad('claims/min', 11), pad('median s', 9), pad('slowest s', 10), pad('slow/med', 9),
  pad('calls/claim', 12), pad('sign-ins', 9), pad('RSS peak MB', 12), pad('RSS med MB', 11),
  pad('CPU/Chromium', 13)].join(' '));
for (const r of all) {
  const head = [r.peer.padEnd(10), r.mode.padEnd(6), pad(r.concurrency, 11), pad(r.claims, 7)];
  if (r.na) { console.log([...head, '  ' + r.na].join(' ')); continue; }
  console.log([...head, pad(r.completed, 5), pad(r.seconds, 8), pad(r.claims_per_min, 11), pad(r.median_s, 9),
    pad(r.max_s, 10), pad(r.median_s ? ratio(r.max_s, r.median_s) : null, 9), pad(r.calls_per_claim, 12),
    pad(r.signins, 9), pad(r.rss_peak_mb, 12), pad(r.rss_median_mb, 11),
    pad(r.cpu_ratio_pct == null ? null : r.cpu_ratio_pct + '%', 13)].join(' '));
}
const find = (peer, mode, c) => rows.find((r) => r.peer === peer && r.mode === mode && r.concurrency === c);
const best = (peer) => rows.filter((r) => r.peer === peer).sort((a, b) => b.claims_per_min - a.claims_per_min)[0];
const target = (label, a, b, want) => {
  if (!a || !b) return console.log(`${label}: n/a`);
  const x = a.claims_per_min / b.claims_per_min;
  console.log(`${label}: ${name(a)} / ${name(b)} claims per minute ${x.toFixed(2)}x (target >= ${want}x): ${x >= want ? 'met' : 'NOT met'}`);
};
target('fresh, 1 worker vs Puppeteer c=1', find('portier', 'fresh', 1), find('puppeteer', 'fresh', 1), 1.25);
// reuse: the sessions sign in inside the clock (one per worker); warm: they
// were signed in before it, as they are for most claims of a session's life
for (const m of ['reuse', 'warm']) {
  const kept = find('portier', m, 4), what = m === 'warm' ? 'kept sessions signed in before the clock' : 'kept sessions, their sign-ins timed';
  target(`${what}, 4 workers vs Puppeteer's best`, kept, best('puppeteer'), 3);
  target(`${what}, 4 workers vs raw CDP, 4 reused sessions (within 2x)`, kept, find('cdp', m, 4), 0.5);
}
for (const r of rows.filter((r) => r.peer === 'portier' && r.signins != null)) {
  const want = r.mode === 'reuse' ? `about ${Math.min(r.concurrency, r.claims)}` : r.mode === 'warm' ? '0' : `${r.claims}`;
  console.log(`sign-ins, ${name(r)}: ${r.signins} for ${r.claims} claims (expected ${want})`);
}
for (const r of rows.filter((r) => r.peer === 'portier' && r.concurrency === 4 && r.rss_peak_mb != null)) {
  const ok = r.rss_peak_mb < 30 && r.cpu_ratio_pct != null && r.cpu_ratio_pct < 10;
  console.log(`portier process, ${name(r)} (target < 30 MB RSS and < 10% of Chromium's CPU): RSS peak ${r.rss_peak_mb} MB, ` +
    `median ${r.rss_median_mb} MB; CPU ${r.portier_cpu_s} s vs Chromium ${r.chromium_cpu_s} s (${r.chromium_pids} processes) = ` +
    `${r.cpu_ratio_pct}%: ${ok ? 'met' : 'NOT met'}`);
}
const n = Math.min(...rows.map((r) => r.claims));
// Portier with kept sessions: over the claims that ran on a session still
// signed in (a claim that signed in first is not a stall)
const stall = (r) => {
  const [max, med, of] = r.kept_median_s ? [r.kept_max_s, r.kept_median_s, ` (${r.kept_claims} on a kept session)`] : [r.max_s, r.median_s, ''];
  return `${name(r)}${of} ${ratio(max, med)}${max < 2 * med ? '' : ' STALL'}`;
};
console.log(`no stalls (slowest claim < 2x the median${n < 200 ? `; the target is over 200 claims, this run ${n}, see bench/run.sh stalls` : ''}): ` +
  rows.filter((r) => r.median_s).map(stall).join(', '));
JS
  ;;
trajectory)
  # What a trajectory costs a task: `portier run` on the sandbox claim, N
  # times without and N times with --trajectory DIR, alternating, one
  # sandbox (`portier portal` on a free port). Target: under 15%.
  n=${2:-10}
  out="$here/out/trajectory.jsonl"
  work=$(mktemp -d)
  portal_pid=
  trap '[ -n "$portal_pid" ] && kill $portal_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  "$root/build/portier" portal --listen 127.0.0.1:0 --data "$work/sandbox" > "$work/banner" 2> "$work/log" &
  portal_pid=$!
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's|^sandbox portal: \(http://[^ ]*\)/login$|\1|p' "$work/banner")
    [ -n "$url" ] && break
    kill -0 $portal_pid 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "bench/trajectory: portier portal did not start: $(tail -1 "$work/log")" >&2
    exit 1
  fi
  echo "bench/trajectory: portier run, $n times without and $n with --trajectory, alternating ($url)" >&2
  (cd "$root" && node "$here/claim/trajectory.mjs" "$root/build/portier" "$url" "$n" "$work") > "$out"
  node - "$out" <<'JS'
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
console.log(`portier run, submit_claim, ${r.runs} each (ok ${r.ok_without} without, ${r.ok_with} with)`);
console.log(`  without --trajectory: median ${r.median_without_s} s  [${r.without_s.join(' ')}]`);
console.log(`  with --trajectory:    median ${r.median_with_s} s  [${r.with_s.join(' ')}]  (${r.trajectory_files} files, ${r.trajectory_kb} KB a run)`);
console.log(`  the run's steps alone (no browser start): median ${r.steps_median_without_s ?? '-'} s without, ${r.steps_median_with_s ?? '-'} s with`);
console.log(`  protocol round trips a claim (deterministic): ${r.round_trips_without ?? '-'} without, ${r.round_trips_with ?? '-'} with`);
const cost = (r.ratio - 1) * 100;
console.log(`with/without ${r.ratio.toFixed(2)}x: a trajectory costs ${cost.toFixed(1)}% of a task's time (target < 15%): ${cost < 15 ? 'met' : 'NOT met'}`);
JS
  ;;
stalls)
  # No stalls: N claims (default 200) through the task API, fresh context per
  # task (--session-max-age 0), 1 worker, trajectories as the service writes
  # them; each claim's own time (startedAt to completedAt). Target: the
  # slowest under 2x the median.
  n=${2:-200}
  out="$here/out/stalls.jsonl"
  work=$(mktemp -d)
  serve_pid=
  trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  "$root/build/portier" serve --demo --db "$work/bench.db" --listen 127.0.0.1:18093 \
    --portal-listen 127.0.0.1:18094 --workers 1 --session-max-age 0 > "$work/banner" 2> "$work/log" &
  serve_pid=$!
  for _ in $(seq 100); do
    grep -q PORTIER_WEBHOOK_SECRET "$work/banner" && break
    kill -0 $serve_pid 2>/dev/null || break
    sleep 0.1
  done
  key=$(sed -n 's/^export PORTIER_API_KEY=//p' "$work/banner")
  if [ -z "$key" ]; then
    echo "bench/stalls: portier serve did not start: $(tail -1 "$work/log")" >&2
    exit 1
  fi
  echo "bench/stalls: $n claims through the API, 1 worker, fresh context per task" >&2
  PORTIER_API_KEY=$key PORTIER_SERVE_PID=$serve_pid PORTIER_BENCH_PORTAL=http://127.0.0.1:18094 \
    node "$here/claims/claims_api.mjs" http://127.0.0.1:18093 "$n" 1 fresh > "$out"
  kill $serve_pid; wait $serve_pid 2>/dev/null || true
  serve_pid=
  node - "$out" <<'JS'
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const slow = r.claim_s.map((s, i) => [s, i + 1]).filter(([s]) => s != null).sort((a, b) => b[0] - a[0]).slice(0, 3);
console.log(`${r.claims} claims, ${r.completed} completed, 1 worker, fresh contexts, ${r.signins ?? '-'} sign-ins, ${r.claims_per_min} claims/min`);
console.log(`per claim: median ${r.median_s} s, p95 ${r.p95_s} s, max ${r.max_s} s; slowest: ${slow.map(([s, i]) => `#${i} ${s} s`).join(', ')}`);
const x = r.max_s / r.median_s;
console.log(`max/median ${x.toFixed(2)}x (target < 2x over 200 claims${r.claims < 200 ? `; this run ${r.claims}` : ''}): ${x < 2 ? 'met' : 'STALL'}`);
console.log(`portier process: RSS peak ${r.rss_peak_mb} MB, median ${r.rss_median_mb} MB; CPU ${r.cpu_ratio_pct}% of Chromium's`);
JS
  ;;
api)
  # POST /tasks per second and latency with wrk, on the durable store (WAL,
  # synchronous=NORMAL; or, with `api SECS pg`, a PostgreSQL server of the
  # bench's own with fsync and synchronous_commit on), beside GET /healthz
  # on the same server (the HTTP layer's ceiling). The server runs no
  # workers: this measures the API.
  secs=${2:-10}
  backend=${3:-sqlite}
  out="$here/out/api.jsonl"
  : > "$out"
  work=$(mktemp -d)
  trap 'kill $serve_pid 2>/dev/null; wait 2>/dev/null; $pg_stop; rm -rf "$work"' EXIT
  api_setup "$work" "$backend"
  PORTIER_LOG=warn "$root/build/portier" serve --db "$db" "${dbflags[@]}" --listen 127.0.0.1:18097 \
    --workers 0 --max-queue 100000000 > /dev/null &
  serve_pid=$!
  sleep 1
  # a warm-up, not shown: the handlers' connections prepare their
  # statements, the tables and caches grow past their first pages (its
  # tasks count in the durability check below)
  echo "bench/api ($backend): warm-up, wrk -t2 -c32 -d3s" >&2
  printf '{"what": "warm-up", "connections": 32, ' >> "$out"
  PORTIER_API_KEY=$key wrk -t2 -c32 -d3s -s "$here/api/post_task.lua" \
    http://127.0.0.1:18097/tasks | tail -1 | sed 's/^{//' >> "$out"
  for c in 32 64; do
    echo "bench/api ($backend): POST /tasks, wrk -t2 -c$c -d${secs}s" >&2
    printf '{"what": "POST /tasks", "connections": %s, ' "$c" >> "$out"
    PORTIER_API_KEY=$key wrk -t2 -c$c -d${secs}s -s "$here/api/post_task.lua" \
      http://127.0.0.1:18097/tasks | tail -1 | sed 's/^{//' >> "$out"
  done
  printf '{"what": "GET /healthz", "connections": 32, ' >> "$out"
  wrk -t2 -c32 -d${secs}s -s "$here/api/get_health.lua" http://127.0.0.1:18097/healthz |
    tail -1 | sed 's/^{//' >> "$out"
  # durable: kill -9, restart, and every task that got its 200 is there
  kill -9 $serve_pid; wait $serve_pid 2>/dev/null || true
  PORTIER_LOG=warn "$root/build/portier" serve --db "$db" "${dbflags[@]}" --listen 127.0.0.1:18097 \
    --workers 0 --max-queue 100000000 > /dev/null &
  serve_pid=$!
  sleep 1
  stored=$(curl -s -H "Authorization: Bearer $key" 'http://127.0.0.1:18097/tasks?limit=1' |
           sed -n 's/^{"data":\[{"id":\([0-9]*\).*/\1/p')
  printf '{"what": "after kill -9", "stored_tasks": %s}\n' "${stored:-0}" >> "$out"
  node - "$out" <<'JS'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const pad = (s, n) => String(s).padStart(n);
console.log(['request'.padEnd(13), pad('conns', 6), pad('requests', 9), pad('req/s', 7), pad('p50 ms', 7), pad('p99 ms', 7), pad('non-2xx', 8)].join(' '));
for (const r of rows.filter((r) => r.rps && r.what !== 'warm-up')) console.log([r.what.padEnd(13), pad(r.connections, 6), pad(r.requests, 9), pad(r.rps, 7), pad(r.p50_ms, 7), pad(r.p99_ms, 7), pad(r.non2xx, 8)].join(' '));
const posted = rows.filter((r) => r.what.startsWith('POST') || r.what === 'warm-up').reduce((a, r) => a + r.requests - r.non2xx, 0);
const kept = rows.find((r) => r.stored_tasks !== undefined);
if (kept) console.log(`durability: ${posted} tasks answered 200, ${kept.stored_tasks} in the store after kill -9 and restart: ${kept.stored_tasks >= posted ? 'none lost' : 'LOST SOME'}`);
const best = Math.max(...rows.filter((r) => r.what.startsWith('POST')).map((r) => r.rps));
console.log(`POST /tasks: ${best} req/s (target 5,000): ${best >= 5000 ? 'met' : 'NOT met'}`);
JS
  ;;
store)
  # The store's own ceiling for task creation (no HTTP): N tasks in
  # group-commit batches of 64, sealed, on SQLite and on PostgreSQL.
  n=${2:-20000}
  out="$here/out/store.jsonl"
  : > "$out"
  work=$(mktemp -d)
  trap '$pg_stop >/dev/null; rm -rf "$work"' EXIT
  echo "bench/store: $n task creations in batches of 64, SQLite then PostgreSQL" >&2
  "$root/build/bench/bench_store" "$work/store.db" "$n" 64 >> "$out"
  pg_start "$work"
  "$root/build/bench/bench_store" "$pg_db" "$n" 64 >> "$out"
  "$root/build/bench/bench_store" "$pg_db" "$n" 64 classic >> "$out"
  cat "$out"
  ;;
api-nodes)
  # POST /tasks per second with two nodes on one database (docs/deploy.md):
  # wrk against each at once, beside one node alone, on the same database
  # (`api-nodes SECS pg`: a PostgreSQL server of the bench's own, durable).
  secs=${2:-10}
  backend=${3:-sqlite}
  work=$(mktemp -d)
  pid_a= pid_b=
  trap 'kill ${pid_a:-} ${pid_b:-} 2>/dev/null; wait 2>/dev/null; cpu_release; $pg_stop; rm -rf "$work"' EXIT
  api_setup "$work" "$backend"
  for p in 18097 18098; do
    PORTIER_LOG=warn "$root/build/portier" serve --db "$db" "${dbflags[@]}" --listen 127.0.0.1:$p \
      --workers 0 --max-queue 100000000 --node-id "bench-$p" > /dev/null &
    if [ $p = 18097 ]; then pid_a=$!; else pid_b=$!; fi
  done
  sleep 1
  for p in 18097 18098; do # warm-up, as in `api`
    PORTIER_API_KEY=$key wrk -t1 -c16 -d3s -s "$here/api/post_task.lua" \
      http://127.0.0.1:$p/tasks > /dev/null
  done
  echo "bench/api-nodes ($backend): POST /tasks, one node, wrk -t2 -c32 -d${secs}s" >&2
  PORTIER_API_KEY=$key wrk -t2 -c32 -d${secs}s -s "$here/api/post_task.lua" \
    http://127.0.0.1:18097/tasks | tail -1 | tee "$work/one"
  echo "bench/api-nodes ($backend): POST /tasks, two nodes at once, wrk -t1 -c16 -d${secs}s each" >&2
  wrks=""
  for p in 18097 18098; do
    (PORTIER_API_KEY=$key wrk -t1 -c16 -d${secs}s -s "$here/api/post_task.lua" \
      http://127.0.0.1:$p/tasks | tail -1 > "$work/wrk-$p") &
    wrks="$wrks $!"
  done
  wait $wrks
  cat "$work/wrk-18097" "$work/wrk-18098"
  node -e 'const r = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
    console.log(`shared cores: one node ${r[0].rps} req/s; two nodes ${r[1].rps} + ${r[2].rps} = ${r[1].rps + r[2].rps} req/s`);' \
    < <(cat "$work/one" "$work/wrk-18097" "$work/wrk-18098")
  # On two cores one node alone already takes what PostgreSQL leaves, so
  # the above shows contention for the CPU, not between the nodes. Held to
  # a share of a core each (a CPU quota, standing in for a machine of its
  # own), what a second node adds shows: both runs at the same load per
  # node (16 connections).
  share=${API_NODES_SHARE:-40}
  if cpu_limit $pid_a node-a "$share" && cpu_limit $pid_b node-b "$share"; then
    echo "bench/api-nodes ($backend): each node held to $share % of a core; one node, then two, wrk -t1 -c16 -d${secs}s each" >&2
    PORTIER_API_KEY=$key wrk -t1 -c16 -d${secs}s -s "$here/api/post_task.lua" \
      http://127.0.0.1:18097/tasks | tail -1 | tee "$work/one-held"
    wrks=""
    for p in 18097 18098; do
      (PORTIER_API_KEY=$key wrk -t1 -c16 -d${secs}s -s "$here/api/post_task.lua" \
        http://127.0.0.1:$p/tasks | tail -1 > "$work/held-$p") &
      wrks="$wrks $!"
    done
    wait $wrks
    cat "$work/held-18097" "$work/held-18098"
    node -e 'const r = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
      const two = r[1].rps + r[2].rps;
      console.log(`held to '"$share"' % of a core each: one node ${r[0].rps} req/s; two nodes ${r[1].rps} + ${r[2].rps} = ${two} req/s (${(two / r[0].rps).toFixed(2)}x)`);' \
      < <(cat "$work/one-held" "$work/held-18097" "$work/held-18098")
  else
    echo "bench/api-nodes: cannot hold a node to a CPU share here (no writable cgroup cpu controller): shared cores only" >&2
  fi
  ;;
ui)
  # The dashboard's task list rendering N tasks (default 1,000) in the
  # test browser, signed in to `serve --demo` on free ports.
  n=${2:-1000}
  out="$here/out/ui.jsonl"
  work=$(mktemp -d)
  "$root/build/portier" serve --demo --db "$work/bench.db" --listen 127.0.0.1:0 \
    --portal-listen 127.0.0.1:0 > "$work/banner" 2> "$work/log" &
  serve_pid=$!
  trap 'kill $serve_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 100); do
    grep -q PORTIER_WEBHOOK_SECRET "$work/banner" && break
    sleep 0.1
  done
  base=$(sed -n 's/^export API_BASE=//p' "$work/banner")
  key=$(sed -n 's/^export PORTIER_API_KEY=//p' "$work/banner")
  echo "bench/ui: the dashboard's task list, $n tasks rendered, in headless Chromium" >&2
  "$root/build/bench/bench_ui" "$base" "$key" "$n" | tee "$out"
  node - "$out" <<'JS'
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
console.log(`${r.rendered} of ${r.tasks} tasks rendered: median ${r.median_ms} ms, p95 ${r.p95_ms} ms, max ${r.max_ms} ms over ${r.runs} runs (target < 200 ms: ${r.median_ms < 200 ? 'met' : 'NOT met'}); a bare table of the same text: ${r.bare_table_ms} ms (the floor on this machine now); page loaded in ${r.page_load_ms} ms`);
JS
  ;;
*)
  echo "bench/run.sh: unknown benchmark '$which'" >&2
  exit 2
  ;;
esac
