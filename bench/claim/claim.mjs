// The Puppeteer peer of bench_claim.c: the same claim on the same sandbox,
// N times one at a time, one browser, a fresh context per claim; the same
// steps a person takes (consent, sign-in, TOTP, the claims app in its
// iframe, payer combobox, fields, confirm dialog, the reference).
import puppeteer from 'puppeteer-core';
import { totp } from '../totp.mjs';

const [portal, nArg, cArg] = process.argv.slice(2);
const n = Number(nArg || 10);
const concurrency = Number(cArg || 0); // > 0: bench/claims mode, claims per minute
const SEED = 'PORTIERSANDBOXSEEDTOTP234567ABCD';

const browser = await puppeteer.launch({
  executablePath: process.env.PORTIER_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    '--disable-dev-shm-usage'],
});

async function claim() {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(portal + '/login', { waitUntil: 'load' });
  await page.locator('#consent-accept').click();
  await page.locator('#user').fill('portier.demo');
  await page.locator('#password').fill('Sandbox!2025');
  await Promise.all([page.waitForNavigation(), page.locator('#login button[type=submit]').click()]);
  await page.waitForFunction(() => document.getElementById('how').textContent.includes('authenticator'));
  await page.locator('#code').fill(totp(SEED));
  await Promise.all([page.waitForNavigation(), page.locator('#mfa button[type=submit]').click()]);
  await page.locator('#menu a[data-app=claims]').click();
  const frame = await (await page.waitForSelector('#app-frame')).contentFrame();
  await frame.waitForFunction(() => document.readyState === 'complete' && location.pathname === '/apps/claims');
  await frame.locator('#payer .control').click();
  await frame.locator('#payer input').fill('Sandbox Health PPO');
  await frame.locator('::-p-xpath(//div[@role="option" and text()="Sandbox Health PPO"])').click();
  await frame.locator('#patient_name').fill('Louise Golicic');
  await frame.locator('#member_id').fill('300059049');
  await frame.locator('#dob').fill('1949-12-23');
  await frame.select('#place_of_service', '12');
  await frame.locator('#service_date').fill('03/25/2025');
  await frame.locator('#attest').click();
  await frame.locator('#submit').click();
  const ref = await frame.waitForSelector('#claim-reference');
  const text = await ref.evaluate((e) => e.textContent);
  await ctx.close();
  return /^CLM-\d{4}-\d+$/.test(text);
}

if (concurrency > 0) {
  // bench/claims: n claims, `concurrency` at a time on the one browser
  let next = 0, ok = 0;
  const times = []; // per claim, seconds
  const t0 = Date.now();
  const worker = async () => {
    while (next < n) {
      next++;
      const c0 = Date.now();
      try { if (await claim()) ok++; } catch (e) { console.error(e.message); }
      times.push((Date.now() - c0) / 1000);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (Date.now() - t0) / 1000;
  const sorted = [...times].sort((a, b) => a - b);
  console.log(JSON.stringify({
    peer: 'puppeteer', mode: 'fresh', concurrency, claims: n, completed: ok, seconds: +seconds.toFixed(1),
    claims_per_min: +(ok / seconds * 60).toFixed(1), median_s: +sorted[sorted.length >> 1].toFixed(3),
    max_s: +sorted[sorted.length - 1].toFixed(3), claim_s: times.map((t) => +t.toFixed(3)),
  }));
  await browser.close();
  process.exit(0);
}

const times = [];
let ok = 0;
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  try { if (await claim()) ok++; } catch (e) { console.error(e.message); }
  times.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
const cpu = process.cpuUsage(cpu0);
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  peer: 'puppeteer', claims: n, completed: ok, median_s: +times[n >> 1].toFixed(3),
  p90_s: +times[Math.floor(n * 0.9)].toFixed(3), peak_rss_kb: process.resourceUsage().maxRSS,
  cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(2),
}));
await browser.close();
