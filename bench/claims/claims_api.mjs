// Portier's side of bench/claims: N sandbox claims through the task API at
// once (the server's workers decide the concurrency), timed from the first
// POST until every task is final. Prints one JSON line, with each task's
// own time (startedAt to completedAt, from GET /tasks/{id}) in claim_s.
//   node claims_api.mjs API_BASE N WORKERS [fresh|reuse]   (the key in PORTIER_API_KEY)
// With PORTIER_BENCH_PORTAL (the sandbox's base URL) it also counts the
// sign-ins during the run (GET /__sandbox/signins before and after); with
// PORTIER_SERVE_PID it samples that process's RSS and CPU and its Chromium's
// CPU (procmon.mjs) from the first POST until the last task is final.
import { procmon } from './procmon.mjs';
const [base, nArg, workers, modeArg] = process.argv.slice(2);
// reuse: the server was started with kept sessions; warm: as reuse, on a
// server whose sessions an earlier run signed in
const mode = modeArg || 'fresh';
const n = Number(nArg || 40);
const key = process.env.PORTIER_API_KEY;
const auth = { Authorization: `Bearer ${key}` };
const body = (i) => JSON.stringify({
  type: 'submit_claim',
  data: `member_id: 300059049\npatient: Louise Golicic\nDOB: 1949-12-23\nplace_of_service: home\nservice_date: 2025-03-${String((i % 28) + 1).padStart(2, '0')}`,
});
const portal = process.env.PORTIER_BENCH_PORTAL;
const signins = async () => {
  if (!portal) return null;
  const j = await (await fetch(`${portal}/__sandbox/signins`)).json();
  return Object.values(j.signins).reduce((a, b) => a + b, 0);
};
const signins0 = await signins();
const mon = process.env.PORTIER_SERVE_PID ? procmon(process.env.PORTIER_SERVE_PID) : null;
const t0 = Date.now();
const ids = [];
for (let i = 0; i < n; i++) {
  const r = await fetch(`${base}/tasks`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: body(i) });
  if (r.status !== 200) throw new Error(`POST /tasks: ${r.status} ${await r.text()}`);
  ids.push((await r.json()).id);
}
const final = new Map();
// The workers take tasks in about the order posted: each round asks only
// about the first few not yet final, so polling does not load the server
// (with 200 queued tasks, asking about all of them every 250 ms would).
const ask = Math.max(2, 2 * Number(workers));
while (final.size < n) {
  await new Promise((r) => setTimeout(r, 250));
  let asked = 0;
  for (const id of ids) {
    if (final.has(id)) continue;
    if (asked++ >= ask) break;
    const t = await (await fetch(`${base}/tasks/${id}`, { headers: auth })).json();
    if (['completed', 'completed_with_issues', 'failed'].includes(t.status)) final.set(id, t);
  }
}
const seconds = (Date.now() - t0) / 1000;
const res = mon ? mon.stop() : null;
const signins1 = await signins();
const completed = [...final.values()].filter((t) => t.status === 'completed').length;
// per task, in the order posted: startedAt to completedAt (or failedAt)
const times = ids.map((id) => final.get(id)).map((t) => (Date.parse(t.completedAt || t.failedAt) - Date.parse(t.startedAt)) / 1000);
const durations = times.filter((d) => Number.isFinite(d)).sort((a, b) => a - b);
// reuse: which claims ran on a kept session still signed in (the trajectory's
// `use` step says so); the others signed in, which is no stall
let kept = null;
if (mode !== 'fresh') {
  kept = [];
  for (const id of ids) {
    const tr = await (await fetch(`${base}/tasks/${id}/trajectory`, { headers: auth })).json();
    kept.push((tr.steps || []).some((s) => s.step === 'use' && /^kept: still signed in/.test(s.session || '')));
  }
}
const keptTimes = kept ? times.filter((d, i) => kept[i] && Number.isFinite(d)).sort((a, b) => a - b) : [];
console.log(JSON.stringify({
  peer: 'portier', mode, concurrency: Number(workers), claims: n, completed, seconds: +seconds.toFixed(1),
  claims_per_min: +(completed / seconds * 60).toFixed(1),
  median_s: durations.length ? +durations[durations.length >> 1].toFixed(3) : null,
  max_s: durations.length ? +durations[durations.length - 1].toFixed(3) : null,
  p95_s: durations.length ? +durations[Math.min(durations.length - 1, Math.ceil(0.95 * durations.length) - 1)].toFixed(3) : null,
  signins: signins0 == null ? null : signins1 - signins0,
  ...(kept ? {
    kept_claims: keptTimes.length,
    kept_median_s: keptTimes.length ? +keptTimes[keptTimes.length >> 1].toFixed(3) : null,
    kept_max_s: keptTimes.length ? +keptTimes[keptTimes.length - 1].toFixed(3) : null,
  } : {}),
  ...(res || {}),
  claim_s: times.map((d) => (Number.isFinite(d) ? +d.toFixed(3) : null)),
}));
