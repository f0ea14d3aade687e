// A webhook receiver for Portier's tests. It verifies every delivery with
// implementations that are not Portier's: the `standardwebhooks` package
// (headers: webhook-id, webhook-timestamp, webhook-signature) and the body's
// own `signature` field (hex HMAC-SHA256 of the RFC 8785 form of `data`,
// computed with the `canonicalize` package and node:crypto).
//
//   node receiver.mjs LOG_FILE SECRETS_FILE
//
// Prints "port N" once listening. Appends one JSON line per request to
// LOG_FILE. SECRETS_FILE holds whsec_ secrets, one per line (re-read on
// every request, so a test can add a rotated one). Behaviour by path:
//   /ok 200 · /flaky 500 twice per webhook-id, then 200 · /gone 410 ·
//   /hang never answers · /redirect 302 · /slow 200 after 300 ms ·
//   /busy 503 with Retry-After: 3 the first time per webhook-id, then 200
import { createServer } from 'node:http';
import { appendFileSync, readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import canonicalize from 'canonicalize';

const [logFile, secretsFile] = process.argv.slice(2);
const seen = new Map();

function secrets() {
  return readFileSync(secretsFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
}

function check(body, headers) {
  const result = { verifiedWith: [], bodySignatureWith: [] };
  let parsed = null;
  try { parsed = JSON.parse(body); } catch { result.parseError = true; }
  secrets().forEach((secret, i) => {
    try {
      new Webhook(secret).verify(body, headers);
      result.verifiedWith.push(i);
    } catch { /* not signed with this one */ }
    if (parsed && parsed.data !== undefined) {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const mac = createHmac('sha256', key).update(canonicalize(parsed.data)).digest('hex');
      if (mac === parsed.signature) result.bodySignatureWith.push(i);
    }
  });
  if (parsed) {
    result.event = parsed.event;
    result.created_at = parsed.created_at;
    result.taskId = parsed.data && parsed.data.id;
    result.status = parsed.data && parsed.data.status;
    result.trajectory_id = parsed.data ? parsed.data.trajectory_id : undefined;
    result.keys = parsed.data ? Object.keys(parsed.data) : [];
    result.envelopeKeys = Object.keys(parsed);
    result.body = parsed; // for the contract check of webhook bodies
  }
  return result;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const id = req.headers['webhook-id'];
    const n = (seen.get(req.url + id) || 0) + 1;
    seen.set(req.url + id, n);
    let status = 200;
    if (req.url === '/flaky' && n <= 2) status = 500;
    if (req.url === '/gone') status = 410;
    if (req.url === '/redirect') status = 302;
    if (req.url === '/busy' && n === 1) status = 503;
    const line = { path: req.url, id, n, at: Date.now(), answered: req.url === '/hang' ? null : status,
                   signatureHeader: req.headers['webhook-signature'], ...check(body, req.headers) };
    appendFileSync(logFile, JSON.stringify(line) + '\n');
    if (req.url === '/hang') return; // never answers
    const send = () => {
      if (status === 302) res.setHeader('Location', '/ok');
      if (status === 503) res.setHeader('Retry-After', '3');
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ received: id }));
    };
    if (req.url === '/slow') setTimeout(send, 300); else send();
  });
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
