// The Puppeteer peer of bench_cdp.c: the same Runtime.evaluate("1") round
// trips through CDPSession.send, 1 and 8 sessions (one page each), on the
// same Debian Chromium with the same flags. Prints the same JSON lines.
import puppeteer from 'puppeteer-core';

const total = Number(process.argv[2] || 10000);
const browser = await puppeteer.launch({
  executablePath: process.env.PORTIER_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    '--disable-dev-shm-usage', '--disable-background-timer-throttling',
    '--disable-backgrounding-occluded-windows', '--disable-renderer-backgrounding'],
});

for (const n of [1, 8]) {
  const pages = await Promise.all(Array.from({ length: n }, () => browser.newPage()));
  const sessions = await Promise.all(pages.map((p) => p.createCDPSession()));
  await Promise.all(sessions.map((s) => s.send('Runtime.evaluate', { expression: '1' })));
  const per = Math.floor(total / n);
  const lat = [];
  let errors = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(sessions.map(async (s) => {
    for (let i = 0; i < per; i++) {
      const a = process.hrtime.bigint();
      try { await s.send('Runtime.evaluate', { expression: '1' }); } catch { errors++; }
      lat.push(Number(process.hrtime.bigint() - a) / 1000);
    }
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((x, y) => x - y);
  const calls = per * n;
  console.log(JSON.stringify({
    peer: 'puppeteer', sessions: n, calls, errors, seconds: +secs.toFixed(3),
    calls_per_s: Math.round(calls / secs), p50_us: +lat[calls >> 1].toFixed(1),
    p99_us: +lat[Math.floor(calls * 0.99)].toFixed(1),
    peak_rss_kb: process.resourceUsage().maxRSS,
  }));
  await Promise.all(pages.map((p) => p.close()));
}
await browser.close();
