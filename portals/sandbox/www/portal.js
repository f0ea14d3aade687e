/* Sandbox Health provider portal: shared behaviour, plain JS, no build step.
 * Every page loads this file. */
(function () {
  'use strict';
  const S = (window.Sandbox = {});

  /* Markup 2 (`portier portal --markup 2`, portals/sandbox/markup.c): every
   * id and class has a generated name. Scripts name elements through these,
   * which give the name the served markup uses (markup.c's, the same hash). */
  S.markup = window.SANDBOX_MARKUP || 1;
  const gen = (kind, name) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    return kind + h.toString(36);
  };
  S.id = (name) => (S.markup === 2 ? gen('k', name) : name);
  S.cls = (names) => (S.markup === 2 ? names.split(' ').map((c) => (c ? gen('u', c) : c)).join(' ') : names);
  S.el = (name) => document.getElementById(S.id(name));
  /* a selector's #ids and .classes (attribute selectors as they are) */
  S.sel = (sel) => (S.markup === 2 ? sel.replace(/\[[^\]]*\]|([#.])([A-Za-z_-][\w-]*)/g,
    (m, k, n) => (k ? k + gen(k === '#' ? 'k' : 'u', n) : m)) : sel);
  /* an HTML string's id, for, aria-* and class attributes */
  S.html = (html) => (S.markup === 2 ? html.replace(/\b(id|for|aria-labelledby|aria-controls|class)="([^"]*)"/g,
    (m, a, v) => a + '="' + (a === 'class' ? S.cls(v) : v.split(' ').map((x) => (x ? S.id(x) : x)).join(' ')) + '"') : html);

  /* The payers the portal knows (the backend's list in sandbox.c). */
  S.PAYERS = ['Sandbox Health PPO', 'Sandbox Health HMO', 'Sandbox Medicare Advantage',
    'Sandbox Medicaid', 'Blue Sandbox Shield', 'Acme Commercial'];

  /* The session token of apps served from the second site (cross-site
   * iframe): passed in the URL by the portal, sent back on every call. */
  const params = new URLSearchParams(location.search);
  S.token = params.get('t');

  /* JSON API call; resolves to {status, body}. */
  S.api = async function (method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (S.token) headers['X-Sandbox-Token'] = S.token;
    const r = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && data && data.error === 'session_expired') {
      (window.top || window).postMessage({ type: 'sandbox:expired' }, '*');
    }
    return { status: r.status, body: data };
  };

  /* Where signing in goes: the page a session expired on (--expire-after
   * sends /login?return=PATH), kept for the MFA step, or the backend's next. */
  const ret = params.get('return');
  if (ret && /^\/[a-z]/.test(ret)) sessionStorage.setItem('sb_return', ret);
  S.afterSignIn = function (next) {
    const back = sessionStorage.getItem('sb_return');
    if (back && next === '/home') { sessionStorage.removeItem('sb_return'); location.href = back; return; }
    location.href = next;
  };

  /* Cookie/consent banner on first visit: it covers the bottom of the page
   * until answered. */
  S.consent = function () {
    if (/(^|; )sb_consent=/.test(document.cookie)) return;
    const b = document.createElement('div');
    b.id = S.id('consent-banner');
    b.setAttribute('role', 'dialog');
    b.setAttribute('aria-label', 'Cookie consent');
    b.innerHTML = S.html('<h2>We value your privacy</h2><p>Sandbox Health uses cookies to keep you ' +
      'signed in, remember your preferences and measure how the portal is used. Choose ' +
      '"Accept all cookies" to allow all of them, or "Reject non-essential" to allow only ' +
      'those the portal needs to work.</p><button class="primary" type="button" id="consent-accept">' +
      'Accept all cookies</button><button type="button" id="consent-reject">Reject non-essential</button>');
    document.body.appendChild(b);
    const done = (v) => {
      document.cookie = 'sb_consent=' + v + '; path=/; max-age=31536000; SameSite=Lax';
      b.remove();
    };
    b.querySelector(S.sel('#consent-accept')).addEventListener('click', () => done('all'));
    b.querySelector(S.sel('#consent-reject')).addEventListener('click', () => done('essential'));
  };

  /* Server-side validation errors shown beside their fields. */
  S.clearErrors = function (form) {
    form.querySelectorAll(S.sel('.field-error')).forEach((e) => e.remove());
    form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  };
  S.showErrors = function (form, errors) {
    Object.keys(errors || {}).forEach((name) => {
      const field = form.querySelector('[name="' + name + '"]') ||
        form.querySelector('[data-field="' + name + '"]');
      const msg = document.createElement('div');
      msg.className = S.cls('field-error');
      msg.setAttribute('role', 'alert');
      msg.textContent = errors[name];
      if (field) {
        field.setAttribute('aria-invalid', 'true');
        const holder = field.closest(S.sel('.combobox')) || field.closest(S.sel('.radio-group')) || field;
        holder.insertAdjacentElement('afterend', msg);
      } else {
        form.prepend(msg);
      }
    });
  };

  /* Masked MM/DD/YYYY text field: whatever is typed or pasted, only digits
   * count, and the slashes are put in for the user. */
  S.maskDate = function (input) {
    input.addEventListener('input', () => {
      const d = input.value.replace(/\D/g, '').slice(0, 8);
      let out = d.slice(0, 2);
      if (d.length > 2) out += '/' + d.slice(2, 4);
      if (d.length > 4) out += '/' + d.slice(4);
      input.value = out;
    });
  };

  /* A searchable combobox in the style of React-Select: a div that opens a
   * filtered list when clicked or typed into. No native <select>. */
  S.combobox = function (root, options, onChange) {
    root.classList.add(S.cls('combobox'));
    const id = root.id || 'cb' + Math.random().toString(36).slice(2);
    root.innerHTML = S.html('<div class="control"><span class="placeholder">Select...</span>' +
      '<input type="text" role="combobox" aria-autocomplete="list" aria-expanded="false" ' +
      'autocomplete="off"></div><div class="menu" role="listbox" hidden></div>');
    const control = root.querySelector(S.sel('.control'));
    const shown = root.querySelector(S.sel('.control span'));
    const input = root.querySelector('input');
    const menu = root.querySelector(S.sel('.menu'));
    const labelFor = document.querySelector('label[for="' + id + '"]');
    if (labelFor) {
      input.id = id + '-input';
      labelFor.htmlFor = input.id;
    }
    input.setAttribute('aria-controls', id + '-menu');
    menu.id = id + '-menu';
    let value = '';
    let focused = 0;
    const render = () => {
      const q = input.value.trim().toLowerCase();
      const list = options.filter((o) => o.toLowerCase().includes(q));
      menu.innerHTML = '';
      if (!list.length) {
        menu.innerHTML = S.html('<div class="no-options">No options</div>');
      }
      list.forEach((o, i) => {
        const el = document.createElement('div');
        el.className = S.cls('option' + (i === focused ? ' focused' : ''));
        el.setAttribute('role', 'option');
        el.textContent = o;
        el.addEventListener('mousedown', (e) => { e.preventDefault(); pick(o); });
        menu.appendChild(el);
      });
      return list;
    };
    const open = () => {
      focused = 0;
      menu.hidden = false;
      input.setAttribute('aria-expanded', 'true');
      shown.hidden = input.value.length > 0;
      render();
    };
    const close = () => {
      menu.hidden = true;
      input.setAttribute('aria-expanded', 'false');
      input.value = '';
      shown.hidden = false;
    };
    const pick = (o) => {
      value = o;
      shown.textContent = o;
      shown.className = S.cls('value');
      close();
      root.dataset.value = o;
      if (onChange) onChange(o);
    };
    control.addEventListener('mousedown', (e) => {
      if (e.target !== input) e.preventDefault();
      input.focus();
      if (menu.hidden) open();
    });
    input.addEventListener('focus', open);
    input.addEventListener('blur', close);
    input.addEventListener('input', () => { focused = 0; shown.hidden = input.value.length > 0; menu.hidden = false; render(); });
    input.addEventListener('keydown', (e) => {
      const list = render();
      if (e.key === 'ArrowDown') { focused = Math.min(focused + 1, list.length - 1); render(); e.preventDefault(); }
      else if (e.key === 'ArrowUp') { focused = Math.max(focused - 1, 0); render(); e.preventDefault(); }
      else if (e.key === 'Enter') { if (list[focused]) pick(list[focused]); e.preventDefault(); }
      else if (e.key === 'Escape') { close(); }
    });
    return { get value() { return value; } };
  };

  /* Reads chosen files as base64 for the JSON API. */
  S.readFiles = function (input) {
    return Promise.all(Array.from(input.files || []).map((f) => new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve({ name: f.name, type: f.type, data: String(r.result).split(',')[1] || '' });
      r.onerror = () => reject(r.error);
      r.readAsDataURL(f);
    })));
  };

  /* Tells the portal page around an app that a page was viewed (the
   * session-timeout warning counts them). Works across sites. */
  S.pageview = function () {
    if (window.parent !== window) window.parent.postMessage({ type: 'sandbox:pageview' }, '*');
  };

  S.busy = function (button, on) {
    button.disabled = on;
    let sp = button.parentNode.querySelector(S.sel('.spinner'));
    if (on && !sp) {
      sp = document.createElement('span');
      sp.className = S.cls('spinner');
      sp.setAttribute('role', 'progressbar');
      sp.setAttribute('aria-label', 'Loading');
      button.insertAdjacentElement('afterend', sp);
    } else if (!on && sp) sp.remove();
  };

  S.esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => (
    { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
})();
