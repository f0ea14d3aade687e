/* Portier's dashboard: the tasks of one account, one task with its
 * trajectory, and the account. Plain script, no framework; it talks to the
 * task API with the session cookie (and the CSRF token on every request that
 * changes anything). No PHI goes into a URL: only task ids. */
'use strict';
(() => {
  const $ = (s, el) => (el || document).querySelector(s);
  const esc = s => String(s == null ? '' : s).replace(/[&<>"']/g,
    c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
  const FINAL = ['completed', 'completed_with_issues', 'failed'];
  const NEEDS = ['waiting_for_input', 'pending_review'];
  const STATUS = {
    pending: 'Pending', dispatching: 'Starting', running: 'Running',
    waiting_for_input: 'Waiting for input', pending_review: 'Pending review',
    completed: 'Completed', completed_with_issues: 'Completed with issues', failed: 'Failed'
  };
  const TYPES = ['submit_claim', 'check_eligibility', 'submit_prior_authorization', 'submit_appeal'];
  const POLL_MS = 2000;
  const SLOW_MS = 5000;

  let S = null;      /* the session: {account, user, csrf} */
  let gen = 0;       /* bumped at each page change: a late answer of an old page is dropped */
  let timer = 0;

  /* ---- Talking to the server ---------------------------------------- */

  /* bg: a refresh of the page's own, not something the person did (it does
   * not keep the session from ending after 30 minutes idle) */
  async function api(method, path, body, bg) {
    const headers = {};
    if (bg) headers['X-Portier-Background'] = '1';
    if (method !== 'GET') headers['X-CSRF-Token'] = S ? S.csrf : '';
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (r.status === 401) {
      signedOut('Your session has ended. Sign in again.');
      throw new Error('signed out');
    }
    if (!r.ok) throw new Error((j && j.message) || 'The server answered ' + r.status);
    return j;
  }

  function flash(msg) {
    const f = $('#flash');
    f.textContent = msg || '';
    f.hidden = !msg;
  }

  /* ---- Formatting --------------------------------------------------- */

  const ms = iso => (iso ? Date.parse(iso) : NaN);
  function dur(t) {
    if (!(t >= 0)) return '';
    if (t < 1000) return t + ' ms';
    if (t < 60000) return (t / 1000).toFixed(t < 10000 ? 1 : 0) + ' s';
    if (t < 3600000) return Math.round(t / 60000) + ' min';
    if (t < 86400000) return (t / 3600000).toFixed(1) + ' h';
    return Math.round(t / 86400000) + ' d';
  }
  const age = iso => (ms(iso) ? dur(Date.now() - ms(iso)) + ' ago' : '');
  const when = iso => (ms(iso) ? new Date(ms(iso)).toLocaleString() : '');
  function taskDur(t) {
    const a = ms(t.startedAt), b = ms(t.completedAt) || ms(t.failedAt) ||
      (FINAL.includes(t.status) ? NaN : Date.now());
    return a && b ? dur(b - a) : '';
  }
  const typeOf = t => t.type || String(t.handler || '').replace(/_\d+$/, '');
  const badge = s => '<span class="badge st-' + esc(s) + '">' + esc(STATUS[s] || s) + '</span>';

  /* ---- Signing in and out ------------------------------------------- */

  function show(signedIn) {
    $('#signin').hidden = signedIn;
    $('#view').hidden = !signedIn;
    $('#nav').hidden = !signedIn;
  }

  function signedOut(msg) {
    S = null;
    gen++;
    clearTimeout(timer);
    $('#view').textContent = '';
    show(false);
    flash('');
    $('#signin-error').textContent = msg || '';
    $('#key').focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const key = $('#key').value.trim(), err = $('#signin-error');
    err.textContent = '';
    if (!key) { err.textContent = 'Enter your key.'; return; }
    const r = await fetch('/session', {
      method: 'POST', headers: {Authorization: 'Bearer ' + key}, credentials: 'same-origin'
    });
    const j = await r.json().catch(() => null);
    if (!r.ok || !j || !j.signed_in) {
      err.textContent = (j && j.message) || 'Signing in failed (' + r.status + ').';
      $('#key').select();
      return;
    }
    $('#key').value = '';
    started(j);
  }

  async function signOut() {
    try { await api('POST', '/session/end'); } catch (e) { /* it has ended either way */ }
    signedOut('You have signed out.');
  }

  function started(session) {
    S = session;
    $('#who').textContent = (S.user === 'API key' ? 'API key' : S.user) + ' · ' + (S.account || '');
    show(true);
    route();
  }

  /* ---- Pages -------------------------------------------------------- */

  function route() {
    if (!S) return;
    gen++;
    clearTimeout(timer);
    flash('');
    const h = location.hash, m = h.match(/^#\/tasks\/(\d+)$/);
    const page = m ? 'task' : h === '#/account' ? 'account' : 'tasks';
    for (const [el, on] of [[$('#nav-tasks'), page !== 'account'], [$('#nav-account'), page === 'account']])
      if (on) el.setAttribute('aria-current', 'page'); else el.removeAttribute('aria-current');
    if (m) taskPage(+m[1], gen);
    else if (page === 'account') accountPage(gen);
    else listPage(gen);
  }

  /* Runs fn now and every POLL_MS while the page is the same one; fn(bg)
   * is told whether it is a background refresh (every run but the first). */
  function poll(g, fn) {
    let bg = false;
    const tick = async () => {
      if (g !== gen) return;
      let again = true;
      try { again = (await fn(bg)) !== false; bg = true; flash(''); } catch (e) {
        if (S) flash(e.message);
      }
      if (g === gen && S && again) timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  /* ---- The list of tasks -------------------------------------------- */

  function listPage(g) {
    const v = $('#view');
    v.innerHTML =
      '<h1>Tasks</h1><div id="needs" class="needs" aria-live="polite"></div>' +
      '<form id="filters" class="filters" role="search">' +
      '<label>Status<select id="f-status"><option value="">All</option>' +
      Object.keys(STATUS).map(s => '<option value="' + s + '">' + STATUS[s] + '</option>').join('') +
      '</select></label>' +
      '<label>Type<select id="f-type"><option value="">All</option>' +
      TYPES.map(t => '<option value="' + t + '">' + t.replace(/_/g, ' ') + '</option>').join('') +
      '</select></label>' +
      '<label>Created on or after<input id="f-date" type="date"></label>' +
      '<label>Task number<input id="f-num" type="search" inputmode="numeric" autocomplete="off"></label>' +
      '</form><div class="wide"><table class="tasks"><thead><tr><th scope="col">Task</th>' +
      '<th scope="col">Status</th><th scope="col">Age</th><th scope="col">Duration</th>' +
      '<th scope="col">Notes</th></tr></thead><tbody id="rows"></tbody></table></div>' +
      '<p id="list-empty" class="muted" hidden>No tasks match.</p>';
    let last = '';
    const refresh = async bg => {
      const f = filters(), q = (f.status ? '&status=' + f.status : '') + (f.type ? '&type=' + f.type : '');
      const [all, wait, review] = await Promise.all([
        api('GET', '/tasks?limit=100' + q, undefined, bg),
        api('GET', '/tasks?limit=100&status=waiting_for_input' + (f.type ? '&type=' + f.type : ''), undefined, bg),
        api('GET', '/tasks?limit=100&status=pending_review' + (f.type ? '&type=' + f.type : ''), undefined, bg)
      ]);
      if (g !== gen) return false;
      const needs = wait.data.concat(review.data).sort((a, b) => b.id - a.id);
      const seen = new Set(needs.map(t => t.id));
      let rows = (f.status && !NEEDS.includes(f.status) ? [] : needs.filter(t => !f.status || t.status === f.status))
        .concat(all.data.filter(t => !seen.has(t.id)));
      rows = rows.filter(t => (!f.since || ms(t.createdAt) >= f.since) &&
        (!f.num || String(t.task_number) === f.num));
      renderNeeds(wait.data.length, review.data.length);
      const sig = JSON.stringify(rows.map(t => [t.id, t.status, t.updatedAt])) + Math.floor(Date.now() / 30000);
      if (sig !== last) { last = sig; renderRows(rows); }
    };
    $('#filters').addEventListener('input', () => { last = ''; refresh().catch(e => flash(e.message)); });
    $('#filters').addEventListener('submit', ev => ev.preventDefault());
    poll(g, refresh);
  }

  function filters() {
    const d = $('#f-date').value;
    return {
      status: $('#f-status').value, type: $('#f-type').value,
      since: d ? new Date(d + 'T00:00:00').getTime() : 0,
      num: $('#f-num').value.trim().replace(/^#/, '')
    };
  }

  function renderNeeds(w, r) {
    $('#needs').innerHTML = w + r === 0 ? '<span class="muted">Nothing needs a person.</span>' :
      '<span class="st-waiting_for_input">' + w + ' waiting for input</span>' +
      '<span class="st-pending_review">' + r + ' pending review</span>';
  }

  /* The rows of the list, as one string: a thousand tasks are one
   * innerHTML. Exposed for the benchmark in bench/ui/. */
  function rowsHtml(rows) {
    let h = '';
    for (const t of rows) {
      const notes = t.notes ? String(t.notes).slice(0, 140) : '';
      h += '<tr class="' + (NEEDS.includes(t.status) ? 'need' : '') + '" data-id="' + (+t.id) + '">' +
        '<td><a href="#/tasks/' + (+t.id) + '">' + esc(t.title) + '</a></td><td>' + badge(t.status) +
        '</td><td>' + age(t.createdAt) + '</td><td>' + taskDur(t) + '</td><td class="notes">' +
        esc(notes) + '</td></tr>';
    }
    return h;
  }

  function renderRows(rows) {
    $('#rows').innerHTML = rowsHtml(rows);
    $('#list-empty').hidden = rows.length > 0;
  }

  /* ---- One task ----------------------------------------------------- */

  function taskPage(id, g) {
    const v = $('#view');
    v.innerHTML = '<p><a href="#/tasks">← All tasks</a></p><div id="task"><p class="muted">Loading…</p></div>' +
      '<section id="traj"></section><section id="deliv"></section>';
    let last = '';
    poll(g, async bg => {
      const t = await api('GET', '/tasks/' + id, undefined, bg);
      if (g !== gen) return false;
      const sig = t.status + t.updatedAt;
      if (sig !== last) {
        last = sig;
        const [traj, del, acts] = await Promise.all([
          api('GET', '/tasks/' + id + '/trajectory', undefined, bg).catch(() => null),
          api('GET', '/tasks/' + id + '/deliveries', undefined, bg).catch(() => null),
          api('GET', '/dashboard/tasks/' + id + '/actions', undefined, bg).catch(() => null)
        ]);
        if (g !== gen) return false;
        renderTask(t, acts ? acts.data : []);
        renderTrajectory(t, traj);
        renderDeliveries(t, del ? del.data : []);
      }
      return !FINAL.includes(t.status);
    });
  }

  function fieldList(pairs) {
    return '<dl class="fields">' + pairs.filter(p => p[1] !== '' && p[1] != null)
      .map(p => '<dt>' + esc(p[0]) + '</dt><dd>' + esc(p[1]) + '</dd>').join('') + '</dl>';
  }

  function renderTask(t, acts) {
    const outs = t.outputs && typeof t.outputs === 'object' ? Object.entries(t.outputs) : [];
    $('#task').innerHTML =
      '<h1>' + esc(t.title) + ' ' + badge(t.status) + '</h1><div id="act"></div>' +
      '<h2>Notes</h2><div class="card notes-full" id="notes">' + (t.notes ? esc(t.notes) : '<span class="muted">None yet.</span>') + '</div><div id="failure"></div>' +
      '<h2>Details</h2><div class="card">' + fieldList([
        ['Task', '#' + t.task_number + ' (id ' + t.id + ')'], ['Type', typeOf(t)], ['SOP', t.handler],
        ['Created', when(t.createdAt)], ['Started', when(t.startedAt)],
        ['Completed', when(t.completedAt)], ['Failed', when(t.failedAt)], ['Duration', taskDur(t)],
        ['Instructions', t.instructions]]) + '</div>' +
      (outs.length ? '<h2>Outputs</h2><div class="card" id="outputs">' +
        fieldList(outs.map(([k, val]) => [k, typeof val === 'string' ? val : JSON.stringify(val)])) + '</div>' : '') +
      '<h2>Who acted</h2><div class="card" id="actions">' + (acts.length ? '<ul>' + acts.map(a =>
        '<li>' + esc(when(a.at)) + ': <b>' + esc(a.actor) + '</b> ' + esc(a.action) + '</li>').join('') + '</ul>' :
        '<span class="muted">No one has answered, decided, cancelled or redelivered.</span>') + '</div>';
    renderActions(t);
  }

  /* What a person can do now: answer, review, cancel. */
  function renderActions(t) {
    const box = $('#act');
    let h = '';
    if (t.status === 'waiting_for_input') {
      const q = t.question || {};
      h += '<form id="answer-form" class="card act"><h2>The agent asks</h2><p id="prompt">' +
        esc(q.prompt || 'This task is waiting for an answer.') + '</p><label for="answer">Answer' +
        (q.name ? ' (' + esc(q.name) + ')' : '') + '</label><div class="row">' +
        '<input id="answer" autocomplete="off" required><button type="submit">Send answer</button></div>' +
        '<p class="error" id="act-error" role="alert"></p></form>';
    } else if (t.status === 'pending_review') {
      h += '<form id="review-form" class="card act"><h2>Review</h2><p id="review">' +
        esc((t.review && t.review.prompt) || t.notes || 'The SOP asks a person to confirm this task before it goes on.') + '</p>' +
        '<label for="comment">Comment (optional)</label><textarea id="comment"></textarea><div class="row">' +
        '<button type="button" id="approve">Approve</button>' +
        '<button type="button" id="reject" class="danger">Reject</button></div>' +
        '<p class="error" id="act-error" role="alert"></p></form>';
    }
    if (!FINAL.includes(t.status))
      h += '<p><button type="button" id="cancel" class="danger">Cancel</button></p>';
    box.innerHTML = h;
    const path = '/tasks/' + t.id;
    const send = async (what, body, btn) => {
      btn.disabled = true;
      try { await api('POST', path + '/' + what, body); route(); } catch (e) {
        const err = $('#act-error');
        if (err) err.textContent = e.message; else flash(e.message);
        btn.disabled = false;
      }
    };
    const af = $('#answer-form');
    if (af) af.addEventListener('submit', ev => {
      ev.preventDefault();
      const value = $('#answer').value;
      if (!value) { $('#act-error').textContent = 'Enter the answer first.'; return; }
      const q = t.question || {};
      send('input', q.name ? {name: q.name, value} : {value}, $('button', af));
    });
    if ($('#approve')) {
      const comment = () => $('#comment').value || undefined;
      $('#approve').addEventListener('click', ev => send('review', {decision: 'approve', comment: comment()}, ev.target));
      $('#reject').addEventListener('click', ev => send('review', {decision: 'reject', comment: comment()}, ev.target));
    }
    const c = $('#cancel');
    if (c) c.addEventListener('click', () => {
      if (c.dataset.armed) return send('cancel', undefined, c);
      c.dataset.armed = '1';
      c.textContent = 'Confirm: cancel this task';
    });
  }

  /* ---- The trajectory ----------------------------------------------- */

  function stepMs(s) {
    const a = ms(s.started_at), b = ms(s.ended_at);
    return a && b ? Math.max(0, b - a) : 0;
  }

  function renderTrajectory(t, traj) {
    const box = $('#traj');
    const steps = traj && Array.isArray(traj.steps) ? traj.steps : [];
    box.innerHTML = '<h2>What the agent did</h2>' + (steps.length ? '' :
      '<p class="muted">No steps yet.</p>');
    if (!steps.length) return;
    const failed = steps.filter(s => s.outcome === 'failed');
    const total = steps.reduce((n, s) => n + stepMs(s), 0);
    const slow = steps.filter(s => stepMs(s) >= SLOW_MS);
    /* the time line: one bar per step, as wide as its share of the time */
    const tl = document.createElement('div');
    tl.className = 'timeline';
    tl.setAttribute('role', 'img');
    tl.setAttribute('aria-label', 'Time line of ' + steps.length + ' steps, ' + dur(total));
    for (const s of steps) {
      const d = document.createElement('div'), t1 = stepMs(s);
      d.style.flexGrow = String(Math.max(t1, total / 400));
      d.className = s.outcome === 'failed' ? 'failed' : t1 >= SLOW_MS ? 'slow' : '';
      d.title = s.file + ':' + s.line + ' ' + dur(t1);
      tl.appendChild(d);
    }
    box.appendChild(tl);
    const legend = document.createElement('p');
    legend.className = 'tl-legend';
    legend.innerHTML = steps.length + ' steps in ' + dur(total) + (slow.length ? '; slowest: ' +
      slow.sort((a, b) => stepMs(b) - stepMs(a)).slice(0, 3).map(s => '<b>' + esc(s.file + ':' + s.line) +
        ' ' + dur(stepMs(s)) + '</b>').join(', ') : '') +
      (traj.html_url ? ' · <a href="' + esc(traj.html_url) + '" download>trajectory.html</a> (for offline use)' : '');
    box.appendChild(legend);
    const fail = $('#failure');
    if (failed.length && fail) { /* what failed and why comes first, under the notes */
      fail.innerHTML = '<h2>The step that failed</h2>';
      fail.appendChild(stepList(failed, t));
    }
    const h = document.createElement('h3');
    h.textContent = 'Every step';
    box.appendChild(h);
    box.appendChild(stepList(steps, t));
  }

  function stepList(steps, t) {
    const ol = document.createElement('ol');
    ol.className = 'steps';
    let h = '';
    for (const s of steps) {
      const t1 = stepMs(s);
      h += '<li class="step ' + (s.outcome === 'failed' ? 'failed' : '') + '"><div class="txt">' +
        '<code>' + esc(s.index) + '. ' + esc(s.file) + ':' + esc(s.line) + '</code> ' +
        '<span class="badge ' + (s.outcome === 'failed' ? 'st-failed' : 'st-completed') + '">' +
        esc(s.outcome || 'running') + '</span> <span class="' + (t1 >= SLOW_MS ? 'slow' : '') + '">' +
        dur(t1) + '</span><div class="src">' + esc(s.action) + '</div>' +
        (s.error ? '<div class="err">' + esc(s.error) + '</div>' : '') +
        (s.dom ? '<details class="domsnap" data-file="' + esc(s.dom) + '"><summary>The page’s HTML at the failure' +
          '</summary><p><a href="/tasks/' + (+t.id) + '/trajectory/' + esc(s.dom) + '" target="_blank" rel="noopener">' +
          'Open it</a> (scripts off)</p><pre class="dom">Loading…</pre></details>' : '') +
        '</div>' + (s.screenshot_url ? '<a href="' + esc(s.screenshot_url) + '" target="_blank" rel="noopener">' +
          '<img class="shot" src="' + esc(s.screenshot_url) + '" width="240" loading="eager" alt="Screenshot after step ' +
          esc(s.index) + '"></a>' : '') + '</li>';
    }
    ol.innerHTML = h;
    for (const d of ol.querySelectorAll('details.domsnap')) d.addEventListener('toggle', async () => {
      const pre = $('pre', d);
      if (!d.open || pre.dataset.done) return;
      pre.dataset.done = '1';
      const r = await fetch('/tasks/' + t.id + '/trajectory/' + encodeURIComponent(d.dataset.file),
        {credentials: 'same-origin', cache: 'no-store'});
      pre.textContent = r.ok ? (await r.text()).slice(0, 200000) : 'Not available (' + r.status + ').';
    });
    return ol;
  }

  /* ---- Webhook deliveries ------------------------------------------- */

  function deliveryRows(list, withTask) {
    return '<div class="wide"><table><thead><tr>' + (withTask ? '<th scope="col">Task</th>' : '') +
      '<th scope="col">When</th><th scope="col">Event</th><th scope="col">HTTP status</th>' +
      '<th scope="col">Time</th><th scope="col">Error</th></tr></thead><tbody>' +
      list.map(d => '<tr>' + (withTask ? '<td><a href="#/tasks/' + (+d.task_id) + '">' + (+d.task_id) + '</a></td>' : '') +
        '<td>' + esc(when(d.at)) + '</td><td>' + esc(d.event) + '</td><td>' + esc(d.http_status == null ? '–' : d.http_status) +
        '</td><td>' + dur(d.latency_ms) + '</td><td>' + esc(d.error || '') + '</td></tr>').join('') +
      '</tbody></table></div>';
  }

  function renderDeliveries(t, list) {
    const box = $('#deliv');
    box.innerHTML = '<h2>Webhook deliveries</h2>' + (list.length ? deliveryRows(list, false) :
      '<p class="muted">None yet: the webhook is sent when the task finishes.</p>') +
      (FINAL.includes(t.status) ? '<p><button type="button" class="plain" id="redeliver">Redeliver</button> ' +
        '<span id="redeliver-msg" role="status"></span></p>' : '');
    const b = $('#redeliver');
    if (b) b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api('POST', '/tasks/' + t.id + '/webhook/redeliver');
        $('#redeliver-msg').textContent = 'Queued: it goes out in a moment.';
      } catch (e) { $('#redeliver-msg').textContent = e.message; }
      b.disabled = false;
    });
  }

  /* ---- The account -------------------------------------------------- */

  async function accountPage(g) {
    const v = $('#view');
    v.innerHTML = '<h1>Account</h1><p class="muted">Loading…</p>';
    const a = await api('GET', '/dashboard/account').catch(e => { flash(e.message); return null; });
    if (!a || g !== gen) return;
    const hook = a.webhook || {};
    v.innerHTML = '<h1>Account ' + esc(a.name) + '</h1>' +
      '<h2>Webhook</h2><div class="card">' + fieldList([['Endpoint', hook.url || 'none'],
        ['Enabled', hook.enabled ? 'yes' : 'no']]) +
      '<p><button type="button" id="test-event">Send test event</button> <span id="test-msg" role="status"></span></p></div>' +
      '<h2>SOPs</h2>' + (a.sops.length ? '<div class="wide"><table><thead><tr><th scope="col">Task type</th>' +
        '<th scope="col">SOP</th><th scope="col">Title</th><th scope="col">Summary</th><th scope="col">Lint</th></tr></thead><tbody>' +
        a.sops.map(s => '<tr><td>' + esc(s.type) + '</td><td>' + esc(s.handler) + ' (version ' + esc(s.version) + ')</td><td>' +
          esc(s.title) + '</td><td>' + esc(s.summary) + '</td><td>' + (s.lint === 'ok' ? badge('completed').replace('Completed', 'ok') :
          '<span class="error">' + esc(s.lint) + '</span>') + '</td></tr>').join('') + '</tbody></table></div>' :
        '<p class="muted">No SOPs: portier account set-sop adds one.</p>') +
      '<h2>Last deliveries</h2>' + (a.deliveries.length ? deliveryRows(a.deliveries, true) :
        '<p class="muted">No webhook has been sent yet.</p>');
    const b = $('#test-event');
    b.addEventListener('click', async () => {
      b.disabled = true;
      $('#test-msg').textContent = 'Sending…';
      try {
        const r = await api('POST', '/dashboard/account/test-event');
        $('#test-msg').textContent = r.ok ? 'Delivered: HTTP ' + r.http_status + ' in ' + dur(r.latency_ms) + '.' :
          'Not delivered: ' + (r.http_status ? 'HTTP ' + r.http_status : r.error || 'no answer') + '.';
      } catch (e) { $('#test-msg').textContent = e.message; }
      b.disabled = false;
    });
  }

  /* ---- Start -------------------------------------------------------- */

  window.portierDashboard = {rowsHtml, renderRows};
  document.addEventListener('DOMContentLoaded', async () => {
    $('#signin-form').addEventListener('submit', ev => signIn(ev).catch(e => {
      $('#signin-error').textContent = e.message;
    }));
    $('#sign-out').addEventListener('click', signOut);
    window.addEventListener('hashchange', route);
    const r = await fetch('/session', {credentials: 'same-origin', cache: 'no-store'});
    const j = await r.json().catch(() => null);
    if (j && j.signed_in) started(j); else signedOut('');
  });
})();
