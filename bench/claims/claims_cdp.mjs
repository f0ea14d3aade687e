// The raw-CDP floor of bench/claims: the sandbox claim with the fewest
// protocol calls a correct claim needs, over chrome-remote-interface, on a
// Chromium this script launches itself (the Puppeteer runner's flags).
// Values and clicks are set by script (Runtime.evaluate), navigations are
// waited for with Page.loadEventFired / Page.frameStoppedLoading, the claims
// app is reached in its own iframe's execution context, the confirm()
// dialog is accepted with Page.handleJavaScriptDialog, and a claim counts
// only if the portal answered with a claim reference.
//   node claims_cdp.mjs PORTAL N CONCURRENCY fresh|reuse|warm
// fresh: a new browser context and a sign-in for every claim.
// reuse: each of the CONCURRENCY sessions (its own context) signs in once
//        and then submits claims from the signed-in home page.
// warm:  as reuse, the sessions signed in before the clock starts (what
//        claims cost once sessions are kept: their sign-ins are amortized
//        over a session's life, 20 minutes by default in Portier).
// Prints one JSON line (CDP_DEBUG=1: every event on stderr). Chromium, its
// process group and its crashpad handlers are killed at exit,
// on error and on SIGINT/SIGTERM.
import CDP from 'chrome-remote-interface';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { totp } from '../totp.mjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [portal, nArg, cArg, modeArg] = process.argv.slice(2);
const n = Number(nArg || 10);
const concurrency = Number(cArg || 1);
const mode = modeArg || 'fresh';
if (!portal || !['fresh', 'reuse', 'warm'].includes(mode)) {
  console.error('usage: node claims_cdp.mjs PORTAL N CONCURRENCY fresh|reuse|warm');
  process.exit(2);
}
const USER = 'portier.demo', PASSWORD = 'Sandbox!2025', SEED = 'PORTIERSANDBOXSEEDTOTP234567ABCD';
const STEP_MS = 30000; // any one wait; a claim that waits longer fails

/* ---- Chromium: launched here, in its own process group, always killed ---- */

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'claims-cdp-'));
// Chromium's crashpad handlers leave the process group (setsid); they carry
// this tag in their environment, so they are found and killed too.
const tagValue = `${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
const tag = `PORTIER_BENCH_CDP=${tagValue}`;
const chromium = spawn(process.env.PORTIER_CHROMIUM || '/usr/bin/chromium', [
  '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
  '--disable-dev-shm-usage', '--disable-breakpad', '--disable-crash-reporter',
  '--remote-debugging-port=0', `--user-data-dir=${profile}`,
  'about:blank',
], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PORTIER_BENCH_CDP: tagValue } });
let killed = false;
function killChromium() {
  if (killed) return;
  killed = true;
  try { process.kill(-chromium.pid, 'SIGKILL'); } catch { /* already gone */ }
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(tag)) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone, or not ours to read */ }
  }
  try { fs.rmSync(profile, { recursive: true, force: true }); } catch { /* best effort */ }
}
process.on('exit', killChromium);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { killChromium(); process.exit(130); });
process.on('uncaughtException', (e) => { console.error('claims_cdp:', e.stack || e); killChromium(); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error('claims_cdp:', e && e.stack || e); killChromium(); process.exit(1); });

// "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr,
// or the same in the profile's DevToolsActivePort file.
const wsUrl = await new Promise((resolve, reject) => {
  let err = '';
  const file = path.join(profile, 'DevToolsActivePort');
  const timer = setInterval(() => {
    try {
      const [port, p] = fs.readFileSync(file, 'utf8').split('\n');
      if (port && p) done(`ws://127.0.0.1:${port.trim()}${p.trim()}`);
    } catch { /* not yet */ }
  }, 50);
  const give = setTimeout(() => done(null, new Error(`Chromium did not start: ${err.slice(-500)}`)), 20000);
  function done(url, e) {
    clearInterval(timer);
    clearTimeout(give);
    chromium.stderr.removeAllListeners('data');
    chromium.stderr.resume(); // drained from now on
    e ? reject(e) : resolve(url);
  }
  chromium.stderr.on('data', (d) => {
    err += d;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
    if (m) done(m[1]);
  });
  chromium.on('exit', (code) => done(null, new Error(`Chromium exited (${code}): ${err.slice(-500)}`)));
});

const client = await CDP({ target: wsUrl, local: true });
let calls = 0; // every protocol command this run sends
const send = (method, params = {}, sessionId) => { calls++; return client.send(method, params, sessionId); };

/* ---- A page session: its events, its frames' execution contexts --------- */

const sessions = new Map();
client.on('event', (m) => { const s = m.sessionId && sessions.get(m.sessionId); if (s) s.onEvent(m); });

class Page {
  static async open(browserContextId) {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank', browserContextId });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const p = new Page(sessionId);
    sessions.set(sessionId, p);
    await Promise.all([send('Page.enable', {}, sessionId), send('Runtime.enable', {}, sessionId)]);
    return p;
  }

  constructor(id) {
    this.id = id;
    this.waiters = new Set();
    this.contexts = new Map(); // frameId -> default execution context id
  }

  onEvent(m) {
    const p = m.params;
    if (process.env.CDP_DEBUG) console.error(m.method, JSON.stringify(p).slice(0, 200));
    if (m.method === 'Runtime.executionContextCreated' && p.context.auxData && p.context.auxData.isDefault) {
      this.contexts.set(p.context.auxData.frameId, p.context.id);
    } else if (m.method === 'Runtime.executionContextDestroyed') {
      for (const [f, c] of this.contexts) if (c === p.executionContextId) this.contexts.delete(f);
    } else if (m.method === 'Runtime.executionContextsCleared') {
      this.contexts.clear();
    } else if (m.method === 'Page.frameNavigated' && !p.frame.parentId) {
      this.url = p.frame.url; // the top document, for where a sign-in ended
    } else if (m.method === 'Page.javascriptDialogOpening') {
      // "Submit this claim to ...?": the one dialog of the flow, accepted
      send('Page.handleJavaScriptDialog', { accept: true }, this.id).catch(() => {});
    }
    for (const w of [...this.waiters]) {
      let r;
      try { r = w.pred(m); } catch (e) { r = undefined; }
      if (r != null && r !== false) { this.waiters.delete(w); clearTimeout(w.timer); w.resolve(r); }
    }
  }

  // Registered before the action that causes the event; pred returns the
  // value to resolve with (or false/undefined to keep waiting).
  wait(pred, what) {
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => { this.waiters.delete(w); reject(new Error(`timed out waiting for ${what}`)); }, STEP_MS);
      this.waiters.add(w);
    });
  }

  waitLoad(what) { return this.wait((m) => m.method === 'Page.loadEventFired', what); }

  // The claims app's iframe navigated and finished loading: its frame id.
  waitClaimsFrame() {
    let fid = null;
    return this.wait((m) => {
      if (m.method === 'Page.frameNavigated' && m.params.frame.parentId &&
          new URL(m.params.frame.url).pathname === '/apps/claims') { fid = m.params.frame.id; return false; }
      return fid && m.method === 'Page.frameStoppedLoading' && m.params.frameId === fid && fid;
    }, 'the claims app in #app-frame');
  }

  async eval(expression, contextId) {
    const r = await send('Runtime.evaluate', { expression, contextId, awaitPromise: true, returnByValue: true }, this.id);
    if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
    return r.result.value;
  }
}

/* ---- The claim, in as few calls as it takes ----------------------------- */

const SET = `const set = (s, v) => { const e = document.querySelector(s); e.value = v;
  e.dispatchEvent(new Event('input', { bubbles: true })); e.dispatchEvent(new Event('change', { bubbles: true })); };`;

// login -> mfa -> home: navigate, 2 evaluates, 3 loads waited for
async function signIn(page) {
  let load = page.waitLoad('/login');
  await send('Page.navigate', { url: portal + '/login' }, page.id);
  await load;
  load = page.waitLoad('/mfa');
  await page.eval(`(() => { ${SET}
    const c = document.getElementById('consent-accept'); if (c) c.click();
    set('#user', ${JSON.stringify(USER)}); set('#password', ${JSON.stringify(PASSWORD)});
    document.querySelector('#login button[type=submit]').click(); })()`);
  await load;
  load = page.waitLoad('/home');
  await page.eval(`(() => { ${SET} set('#code', ${JSON.stringify(totp(SEED))});
    document.querySelector('#mfa button[type=submit]').click(); })()`);
  await load;
  const at = new URL(page.url).pathname;
  if (at !== '/home') throw new Error(`sign-in ended on ${at}`);
}

// From the signed-in home page: the Claims link, then the form in the
// iframe's context (payer combobox, fields, attestation, submit), the
// confirm() accepted by the event handler, the reference read back.
async function submitClaim(page) {
  const framed = page.waitClaimsFrame();
  await page.eval(`document.querySelector('#menu a[data-app=claims]').click()`);
  const fid = await framed;
  const ctx = page.contexts.get(fid);
  if (!ctx) throw new Error('no execution context for the claims frame');
  const r = await page.eval(`new Promise((resolve) => { ${SET}
    const $ = (s) => document.querySelector(s);
    const down = (e) => e.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, cancelable: true }));
    down($('#payer .control'));
    set('#payer input', 'Sandbox Health PPO');
    const opt = [...document.querySelectorAll('#payer [role=option]')].find((o) => o.textContent === 'Sandbox Health PPO');
    if (!opt) return resolve({ error: 'no payer option' });
    down(opt);
    if ($('#payer').dataset.value !== 'Sandbox Health PPO') return resolve({ error: 'payer not chosen' });
    set('#patient_name', 'Louise Golicic');
    set('#member_id', '300059049');
    set('#dob', '1949-12-23');
    set('#place_of_service', '12');
    set('#service_date', '03/25/2025');
    if (!$('#attest').checked) $('#attest').click();
    const err = $('#form-error');
    const seen = () => {
      const ref = document.getElementById('claim-reference');
      if (ref) return { ref: ref.textContent };
      if (!err.hidden) return { error: err.textContent };
    };
    const obs = new MutationObserver(() => { const v = seen(); if (v) { obs.disconnect(); resolve(v); } });
    obs.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    setTimeout(() => $('#submit').click(), 0); // confirm() blocks: not inside this evaluate
  })`, ctx);
  if (r.error) throw new Error(`the portal: ${r.error}`);
  if (!/^CLM-\d{4}-\d+$/.test(r.ref)) throw new Error(`no claim reference: ${r.ref}`);
  return r.ref;
}

async function newSession() {
  const { browserContextId } = await send('Target.createBrowserContext', { disposeOnDetach: true });
  const page = await Page.open(browserContextId);
  return { browserContextId, page };
}
async function closeSession(s) {
  sessions.delete(s.page.id);
  for (const w of s.page.waiters) clearTimeout(w.timer);
  await send('Target.disposeBrowserContext', { browserContextId: s.browserContextId }).catch(() => {});
}

/* ---- The run ------------------------------------------------------------ */

const times = []; // per claim, seconds (reuse, warm: sign-in not included)
let next = 0, ok = 0;
// warm: every worker's session signed in before the clock starts
const ready = mode === 'warm'
  ? await Promise.all(Array.from({ length: concurrency }, async () => { const s = await newSession(); await signIn(s.page); return s; }))
  : [];
if (mode === 'warm') calls = 0; // per claim: the sign-ins are not the claims'
const t0 = Date.now();

async function worker() {
  let s = ready.pop() || null; // reuse, warm: the signed-in session, kept across claims
  while (next < n) {
    next++;
    try {
      if (mode === 'fresh') {
        const c0 = Date.now();
        s = await newSession();
        try {
          await signIn(s.page);
          await submitClaim(s.page);
          ok++;
        } finally {
          await closeSession(s);
          s = null;
          times.push((Date.now() - c0) / 1000);
        }
      } else {
        if (!s) { s = await newSession(); await signIn(s.page); }
        const c0 = Date.now();
        try {
          await submitClaim(s.page);
          ok++;
        } finally { times.push((Date.now() - c0) / 1000); }
      }
    } catch (e) {
      console.error('claims_cdp:', e.message);
      if (s) { await closeSession(s); s = null; } // a failed session is not reused
    }
  }
  if (s) await closeSession(s);
}

await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (Date.now() - t0) / 1000;
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({
  peer: 'cdp', mode, concurrency, claims: n, completed: ok, seconds: +seconds.toFixed(1),
  claims_per_min: +(ok / seconds * 60).toFixed(1),
  median_s: sorted.length ? +sorted[sorted.length >> 1].toFixed(3) : null,
  max_s: sorted.length ? +sorted[sorted.length - 1].toFixed(3) : null,
  calls_per_claim: +(calls / n).toFixed(1),
  claim_s: times.map((t) => +t.toFixed(3)),
}));
await client.close().catch(() => {});
killChromium();
process.exit(0);
