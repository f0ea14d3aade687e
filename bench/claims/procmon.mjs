// Watches one process (the `portier serve` under test) from /proc while a
// bench runs: its RSS (VmRSS) every `everyMs`, and the CPU time (utime +
// stime) it and its descendants (Chromium: the browser is portier's child,
// renderers and helpers are the browser's) use from start() to stop().
// Descendants are found through /proc/*/stat ppid chains at every sample; a
// process that exits during the run counts with the last value seen (so
// sample often), one that started during it from zero. Linux only.
//   const m = procmon(pid); ...; const r = m.stop();
//   r: { rss_peak_mb, rss_median_mb, samples, portier_cpu_s, chromium_cpu_s,
//        chromium_pids, cpu_ratio_pct }
import fs from 'node:fs';
import { execSync } from 'node:child_process';

const TCK = (() => {
  try { return Number(execSync('getconf CLK_TCK').toString().trim()) || 100; } catch { return 100; }
})();

// [ppid, utime + stime] of a pid, or null if it is gone
function stat(pid) {
  let s;
  try { s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return [Number(f[1]), Number(f[11]) + Number(f[12])];
}

function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

// every live process under root: pid -> ticks
function descendants(root) {
  const info = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = stat(d);
    if (st) info.set(Number(d), st);
  }
  const kids = new Map();
  for (const [pid, [ppid]] of info) {
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(pid);
  }
  const out = new Map();
  const todo = [...(kids.get(root) || [])];
  while (todo.length) {
    const p = todo.pop();
    out.set(p, info.get(p)[1]);
    todo.push(...(kids.get(p) || []));
  }
  return out;
}

export function procmon(pid, everyMs = 200) {
  pid = Number(pid);
  const base = new Map(descendants(pid)); // CPU already spent before the run
  const last = new Map(base);
  const own0 = stat(pid)?.[1] ?? 0;
  let own = own0;
  const rss = [];
  const sample = () => {
    const st = stat(pid);
    if (!st) return;
    own = st[1];
    const kb = rssKb(pid);
    if (kb != null) rss.push(kb);
    for (const [p, t] of descendants(pid)) last.set(p, t);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      sample();
      clearInterval(timer);
      let child = 0;
      for (const [p, t] of last) child += t - (base.get(p) || 0);
      const sorted = [...rss].sort((a, b) => a - b);
      const ownS = (own - own0) / TCK, childS = child / TCK;
      return {
        rss_peak_mb: sorted.length ? +(sorted[sorted.length - 1] / 1024).toFixed(1) : null,
        rss_median_mb: sorted.length ? +(sorted[sorted.length >> 1] / 1024).toFixed(1) : null,
        samples: rss.length,
        portier_cpu_s: +ownS.toFixed(2),
        chromium_cpu_s: +childS.toFixed(2),
        chromium_pids: last.size,
        cpu_ratio_pct: childS > 0 ? +(100 * ownS / childS).toFixed(1) : null,
      };
    },
  };
}
