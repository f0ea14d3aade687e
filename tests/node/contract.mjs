// Holds a running Portier to docs/openapi.yaml: makes real requests (every
// route, the success and the error answers) and checks that each status is
// documented for that route and each JSON body matches the documented
// schema (Ajv, JSON Schema 2020-12, as OpenAPI 3.1 uses).
//
//   node contract.mjs OPENAPI_YAML API_BASE API_KEY
//   node contract.mjs --bodies OPENAPI_YAML RECEIVER_LOG
// The second form holds every webhook body that tests/node/receiver.mjs
// logged to the spec's `webhooks:` section (by its event).
// Exit 0 when every answer is as documented; otherwise each mismatch is
// printed and the exit status is 1.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const bodiesMode = process.argv[2] === '--bodies';
const [specPath, base, key] = process.argv.slice(bodiesMode ? 3 : 2);
const spec = YAML.parse(readFileSync(specPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('binary', true);
ajv.addSchema(spec, 'openapi.json');

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const resolve = (obj, ptr) => {
  while (obj && obj.$ref) {
    ptr = obj.$ref.slice(1);
    obj = ptr.split('/').slice(1).reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  }
  return [obj, ptr];
};

let failures = 0, checked = 0;
function fail(what, detail) {
  failures++;
  console.error(`MISMATCH ${what}: ${detail}`);
}

async function check(route, method, path, { body, type, auth = true, headers = {} } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${key}`;
  if (type) h['Content-Type'] = type;
  const res = await fetch(base + path, { method, headers: h, body });
  const text = await res.text();
  const what = `${method} ${path} -> ${res.status}`;
  checked++;
  const item = spec.paths[route];
  if (!item) return fail(what, `route ${route} is not in the spec`);
  const op = item[method.toLowerCase()];
  if (!op) {
    // an undocumented method must be refused with 405 and the error shape
    if (res.status !== 405) fail(what, 'an undocumented method was not answered 405');
    return validate(what, text, '/components/schemas/Error');
  }
  const rptr = `/paths/${esc(route)}/${method.toLowerCase()}/responses/${res.status}`;
  const [resp, respPtr] = resolve(op.responses[String(res.status)], rptr);
  if (!resp) return fail(what, `status ${res.status} is not documented (${text.slice(0, 200)})`);
  const ctype = (res.headers.get('content-type') || '').split(';')[0];
  if (resp.content && !resp.content[ctype])
    return fail(what, `content type ${ctype} is not documented`);
  if (ctype === 'application/json' && resp.content && resp.content[ctype].schema)
    validate(what, text, `${respPtr}/content/application~1json/schema`);
  return text ? (ctype === 'application/json' ? JSON.parse(text) : text) : null;
}

function validate(what, text, ptr) {
  let data;
  try { data = JSON.parse(text); } catch { return fail(what, `body is not JSON: ${text.slice(0, 200)}`); }
  const v = ajv.getSchema(`openapi.json#${ptr}`);
  if (!v) return fail(what, `no schema at ${ptr}`);
  if (!v(data)) fail(what, `${ajv.errorsText(v.errors)} in ${text.slice(0, 300)}`);
  return data;
}

// Every logged webhook body against the webhooks section, by event.
if (bodiesMode) {
  const byEvent = { task_finished: 'taskFinished', task_waiting: 'taskWaiting', ping: 'ping' };
  const lines = readFileSync(base, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const seen = {};
  for (const line of lines) {
    if (!line.body) continue;
    const hook = byEvent[line.body.event];
    checked++;
    if (!hook) { fail(`webhook ${line.id}`, `event ${line.body.event} is not in the spec`); continue; }
    if (!spec.webhooks || !spec.webhooks[hook]) { fail(`webhook ${hook}`, 'not in the webhooks section'); continue; }
    seen[line.body.event] = (seen[line.body.event] || 0) + 1;
    validate(`webhook ${line.body.event} ${line.id}`, JSON.stringify(line.body),
             `/webhooks/${hook}/post/requestBody/content/application~1json/schema`);
  }
  console.log(`${checked} webhook bodies checked against ${specPath} (${JSON.stringify(seen)}), ${failures} mismatches`);
  process.exit(failures || !checked ? 1 : 0);
}

const json = 'application/json';
const good = JSON.stringify({ type: 'check_eligibility', data: 'member_id: 300059049\ndob: 1949-12-23' });
const t = await check('/tasks', 'POST', '/tasks', { body: good, type: json });
const id = t && t.id;
const form = new FormData();
form.append('type', 'check_eligibility');
form.append('data', 'member_id: 300059049\ndob: 12/23/1949');
form.append('files', new Blob(['%PDF-1.4 test'], { type: 'application/pdf' }), 'note.pdf');
await check('/tasks', 'POST', '/tasks', { body: form });
await check('/tasks', 'POST', '/tasks', { body: good, type: json, headers: { 'Idempotency-Key': 'k-1' } });
await check('/tasks', 'POST', '/tasks', { body: good, type: json, headers: { 'Idempotency-Key': 'k-1' } });
await check('/tasks', 'POST', '/tasks', { body: good, type: json, auth: false });
await check('/tasks', 'POST', '/tasks', { body: '{"type":', type: json });
await check('/tasks', 'POST', '/tasks', { body: 'x', type: 'text/plain' });
await check('/tasks', 'POST', '/tasks', { body: '{"type":"fax"}', type: json });
await check('/tasks', 'POST', '/tasks', { body: '{"type":"check_eligibility","data":"member_id: 1"}', type: json });
await check('/tasks', 'POST', '/tasks', { body: 'x'.repeat(70000), type: json });
await check('/tasks', 'POST', '/tasks', { body: '--b\r\nbroken', type: 'multipart/form-data; boundary=b' });
await check('/tasks', 'GET', '/tasks');
await check('/tasks', 'GET', '/tasks?limit=1&status=pending');
await check('/tasks', 'GET', '/tasks?status=bogus');
await check('/tasks', 'GET', '/tasks?status=pending,failed&created_after=2020-01-01&created_before=2999-01-01T00:00:00Z');
await check('/tasks', 'GET', '/tasks?since=1');
await check('/tasks', 'GET', '/tasks?limit=1&limit=2');
await check('/tasks', 'POST', '/tasks', { body: JSON.stringify({ type: 'check_eligibility', data: 'member_id: 300059049\ndob: 1949-12-24' }), type: json, headers: { 'Idempotency-Key': 'k-1' } });
await check('/tasks', 'POST', '/tasks', { body: '{"type":"submit_appeal","data":"x: y"}', type: json });
await check('/tasks', 'DELETE', '/tasks');
await check('/tasks/{id}', 'GET', `/tasks/${id}`);
await check('/tasks/{id}', 'GET', '/tasks/999999');
await check('/tasks/{id}', 'GET', '/tasks/abc');
await check('/tasks/{id}/input', 'POST', `/tasks/${id}/input`, { body: '{"value":"x"}', type: json });
await check('/tasks/{id}/review', 'POST', `/tasks/${id}/review`, { body: '{"decision":"approve"}', type: json });
await check('/tasks/{id}/review', 'POST', `/tasks/${id}/review`, { body: '{"decision":"perhaps"}', type: json });
await check('/tasks/{id}/webhook/redeliver', 'POST', `/tasks/${id}/webhook/redeliver`);
await check('/tasks/{id}/cancel', 'POST', `/tasks/${id}/cancel`);
await check('/tasks/{id}/cancel', 'POST', `/tasks/${id}/cancel`);
await check('/tasks/{id}/deliveries', 'GET', `/tasks/${id}/deliveries`);
await check('/tasks/{id}/webhook/redeliver', 'POST', `/tasks/${id}/webhook/redeliver`);
await check('/tasks/{id}/trajectory', 'GET', `/tasks/${id}/trajectory`);
await check('/tasks/{id}/trajectory/{file}', 'GET', `/tasks/${id}/trajectory/nothing.png`);
await check('/tasks/{id}', 'PUT', `/tasks/${id}`);
await check('/webhook', 'GET', '/webhook');
await check('/webhook', 'GET', '/webhook', { auth: false });
await check('/webhook', 'PUT', '/webhook', { body: '{"events":["task_finished","task_waiting"]}', type: json });
await check('/webhook', 'PUT', '/webhook', { body: '{"events":["task_done"]}', type: json });
await check('/webhook', 'PUT', '/webhook', { body: 'x', type: 'text/plain' });
await check('/webhook', 'DELETE', '/webhook');
await check('/webhook/test', 'POST', '/webhook/test');
await check('/webhook/recover', 'POST', '/webhook/recover', { body: '{"since":"2020-01-01T00:00:00Z"}', type: json });
await check('/webhook/recover', 'POST', '/webhook/recover', { body: '{"since":"then"}', type: json });
await check('/webhook', 'PUT', '/webhook', { body: '{"events":["task_finished"]}', type: json });
await check('/session', 'GET', '/session', { auth: false });
await check('/session', 'POST', '/session');
await check('/session', 'POST', '/session', { auth: false });
await check('/session/end', 'POST', '/session/end', { auth: false });
await check('/dashboard/account', 'GET', '/dashboard/account', { auth: false });
await check('/healthz', 'GET', '/healthz', { auth: false });
await check('/metrics', 'GET', '/metrics', { auth: false });
console.log(`${checked} answers checked against ${specPath}, ${failures} mismatches`);
process.exit(failures ? 1 : 0);
