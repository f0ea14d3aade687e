// What a trajectory costs: `portier run` on the sandbox claim, N times
// without and N times with --trajectory DIR, alternating (A B A B ...) after
// one warm-up run that is not counted, each with its own service date (a
// data file per run). Prints one JSON line: median seconds each, the ratio,
// and the files the trajectories held (so a run that wrote nothing shows).
//   node trajectory.mjs PORTIER PORTAL_URL N WORKDIR   (run from the repo root)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [portier, portal, nArg, work] = process.argv.slice(2);
const n = Number(nArg || 10);
const data = fs.readFileSync('sops/sandbox/examples/submit_claim.txt', 'utf8');
const day0 = Date.UTC(2024, 0, 1);
let runNo = 0;

function run(traj) {
  const k = runNo++;
  const d = new Date(day0 + k * 86400e3).toISOString().slice(0, 10);
  const file = path.join(work, `claim-${k}.txt`);
  fs.writeFileSync(file, data.replace(/^service_date:.*$/m, `service_date: ${d}`));
  const args = ['run', 'sops/sandbox/submit_claim.sop', '--data', file, '--portal', portal,
    '--secrets', 'sops/sandbox/sandbox.secrets'];
  const dir = path.join(work, `traj-${k}`);
  if (traj) args.push('--trajectory', dir);
  const t0 = process.hrtime.bigint();
  // at debug, the run says how long its steps took and how many protocol
  // round trips they made: a count the shared machine's noise leaves alone
  const env = { ...process.env, PORTIER_LOG: 'debug' };
  const r = spawnSync(portier, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /agent: run: (\d+) ms, (\d+) protocol calls/.exec(r.stderr || '');
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    process.stderr.write(`bench/trajectory: run ${k}${traj ? ' with trajectory' : ''} exit ${r.status}: ${r.stdout}${r.stderr}`);
  }
  let files = 0, bytes = 0;
  if (traj && fs.existsSync(dir)) {
    const walk = (p) => {
      for (const e of fs.readdirSync(p, { withFileTypes: true })) {
        const q = path.join(p, e.name);
        if (e.isDirectory()) walk(q); else { files++; bytes += fs.statSync(q).size; }
      }
    };
    walk(dir);
  }
  return { s, ok: r.status === 0, files, bytes, steps_ms: m ? Number(m[1]) : null, trips: m ? Number(m[2]) : null };
}

run(false); // warm-up: Chromium and the disk cache
const a = [], b = [];
for (let i = 0; i < n; i++) {
  a.push(run(false));
  b.push(run(true));
}
const med = (xs, k = 's') => {
  const s = xs.map((x) => x[k]).filter((v) => v != null).sort((p, q) => p - q);
  if (!s.length) return null;
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ma = med(a), mb = med(b);
console.log(JSON.stringify({
  runs: n,
  ok_without: a.filter((x) => x.ok).length, ok_with: b.filter((x) => x.ok).length,
  median_without_s: +ma.toFixed(3), median_with_s: +mb.toFixed(3),
  ratio: +(mb / ma).toFixed(3),
  without_s: a.map((x) => +x.s.toFixed(3)), with_s: b.map((x) => +x.s.toFixed(3)),
  trajectory_files: Math.round(b.reduce((t, x) => t + x.files, 0) / n),
  trajectory_kb: Math.round(b.reduce((t, x) => t + x.bytes, 0) / n / 1024),
  // the run's own steps (no browser start), and its protocol round trips
  steps_median_without_s: med(a, 'steps_ms') == null ? null : +(med(a, 'steps_ms') / 1000).toFixed(3),
  steps_median_with_s: med(b, 'steps_ms') == null ? null : +(med(b, 'steps_ms') / 1000).toFixed(3),
  round_trips_without: med(a, 'trips'), round_trips_with: med(b, 'trips'),
}));
