/*
 * dom.js - the agent's eyes inside a frame: finding elements the way SOPs
 * name them, and judging whether a person could act on them now.
 *
 * Called through cdp_page_call / cdp_handle_call as dom(op, a, b, c). It never
 * changes the page, except `selectOption` (native <select>, as a person's
 * pick would) and `scroll` (into view). It is embedded into the binary at
 * build time (agent/CMake) and injected per call, so no page script can
 * tamper with a copy left behind.
 */
(function dom(op, a, b, c) {
  'use strict';
  /* an element `look` found comes back wrapped with what was seen of it */
  if (a && typeof a === 'object' && Object.prototype.hasOwnProperty.call(a, 'lookedAt')) a = a.lookedAt;
  const norm = (s) => String(s == null ? '' : s).replace(/\s+/g, ' ').trim();
  const visible = (el) => {
    if (!el || !el.isConnected) return false;
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    const st = getComputedStyle(el);
    return st.visibility !== 'hidden' && st.display !== 'none' && Number(st.opacity) !== 0;
  };
  const describe = (el) => {
    if (!el || !el.tagName) return String(el);
    let d = el.tagName.toLowerCase();
    if (el.id) d += '#' + el.id;
    else if (el.classList && el.classList.length) d += '.' + Array.from(el.classList).slice(0, 2).join('.');
    return d;
  };
  const textOf = (id) => { const e = document.getElementById(id); return e ? norm(e.textContent) : ''; };

  /* The accessible name, close enough to the spec for portal markup. */
  const accName = (el) => {
    const lb = el.getAttribute && el.getAttribute('aria-labelledby');
    if (lb) return norm(lb.split(/\s+/).map(textOf).join(' '));
    const al = el.getAttribute && el.getAttribute('aria-label');
    if (al) return norm(al);
    if (el.labels && el.labels.length) return norm(Array.from(el.labels).map((l) => l.textContent).join(' '));
    if (el.id) {
      const l = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
      if (l) return norm(l.textContent);
    }
    const tag = el.tagName.toLowerCase();
    if (tag === 'input' && /^(button|submit|reset)$/i.test(el.type)) return norm(el.value || el.type);
    if (tag === 'img') return norm(el.alt);
    if (['button', 'a', 'option', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'summary', 'legend', 'th', 'td', 'li'].includes(tag) ||
        el.getAttribute('role')) return norm(el.textContent || el.title);
    return norm(el.title || el.placeholder || '');
  };

  const implicitRole = (el) => {
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (tag === 'button') return 'button';
    if (tag === 'a' && el.hasAttribute('href')) return 'link';
    if (tag === 'select') return el.multiple ? 'listbox' : 'combobox';
    if (tag === 'textarea') return 'textbox';
    if (tag === 'option') return 'option';
    if (/^h[1-6]$/.test(tag)) return 'heading';
    if (tag === 'img') return 'img';
    if (tag === 'dialog') return 'dialog';
    if (tag === 'tr') return 'row';
    if (el.isContentEditable && !(el.parentElement && el.parentElement.isContentEditable)) return 'textbox';
    if (tag === 'td') return 'cell';
    if (tag === 'input') {
      if (/^(button|submit|reset|image)$/.test(type)) return 'button';
      if (type === 'checkbox') return 'checkbox';
      if (type === 'radio') return 'radio';
      if (type === 'search') return 'searchbox';
      if (/^(|text|email|tel|url|number|password)$/.test(type)) return 'textbox';
    }
    return '';
  };
  const roleOf = (el) => (el.getAttribute('role') || implicitRole(el)).toLowerCase();

  /* Exact (whitespace-normalised) first, then case-insensitive, then
   * containing: the first tier that matches anything wins. */
  const byName = (els, want, nameOf) => {
    want = norm(want);
    const tiers = [(n) => n === want, (n) => n.toLowerCase() === want.toLowerCase(),
      (n) => n.toLowerCase().includes(want.toLowerCase())];
    for (const t of tiers) {
      const hit = els.filter((e) => t(nameOf(e)));
      if (hit.length) return hit;
    }
    return [];
  };

  const controlOfLabel = (l) => {
    if (l.control) return l.control;
    if (l.htmlFor) return document.getElementById(l.htmlFor);
    return l.querySelector('input,select,textarea,[contenteditable=""],[contenteditable=true],[role=combobox],[role=textbox]');
  };

  const find = (loc) => {
    const kind = loc.kind, v = loc.value;
    let els = [];
    if (kind === 'css') {
      els = Array.from(document.querySelectorAll(v));
    } else if (kind === 'xpath') {
      const r = document.evaluate(v, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      for (let i = 0; i < r.snapshotLength; i++) if (r.snapshotItem(i).nodeType === 1) els.push(r.snapshotItem(i));
    } else if (kind === 'text') {
      /* the innermost visible elements whose text is the text */
      const all = Array.from(document.body ? document.body.querySelectorAll('*') : []).filter(
        (e) => !['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(e.tagName) && visible(e));
      const hits = byName(all, v, (e) => norm(e.innerText || e.textContent));
      els = hits.filter((e) => !hits.some((o) => o !== e && e.contains(o)));
    } else if (kind === 'label') {
      const labels = Array.from(document.querySelectorAll('label')).filter(visible);
      const want = (l) => norm(l.textContent).replace(/\s*[*:]+$/, '');
      const fromLabels = byName(labels, v, want).map(controlOfLabel).filter(Boolean);
      const aria = byName(Array.from(document.querySelectorAll('[aria-label],[aria-labelledby]')).filter(visible), v, accName);
      els = fromLabels.length ? fromLabels : aria;
      if (!els.length) {
        els = byName(Array.from(document.querySelectorAll('input[placeholder],textarea[placeholder]')).filter(visible),
          v, (e) => norm(e.placeholder));
      }
      els = Array.from(new Set(els));
    } else if (kind === 'role') {
      const all = Array.from(document.querySelectorAll('*')).filter((e) => roleOf(e) === loc.role);
      const shown = all.filter((e) => visible(e) || (e.type === 'checkbox' || e.type === 'radio'));
      els = byName(shown, v, accName);
    }
    return els;
  };

  const pick = (loc) => {
    const els = find(loc);
    if (loc.nth > 0) return { els, el: els[loc.nth - 1] || null };
    if (loc.nth < 0) return { els, el: els[els.length - 1] || null };
    return { els, el: els.length === 1 ? els[0] : null };
  };

  /* The next animation frame: a box that is the same in two consecutive
   * frames is "stable" (CSS animations and transitions are updated, and
   * earlier rAF callbacks have run, before this one). */
  const nextFrame = () => new Promise((r) => requestAnimationFrame(r));

  /* For radios and checkboxes hidden behind a styled label, act on the
   * label a person would click. */
  const target = (el) => {
    if (!visible(el) && (el.type === 'checkbox' || el.type === 'radio') && el.labels && el.labels.length)
      return Array.from(el.labels).find(visible) || el;
    return el;
  };

  const coverOf = (hit) => {
    let cover = hit;
    while (cover && cover.parentElement && cover.parentElement !== document.body &&
           getComputedStyle(cover).position === 'static') cover = cover.parentElement;
    return describe(cover);
  };

  /* Could a person act on el now: visible, enabled, still, and the point
   * to act at not covered (opt.left: near its left edge). */
  const actionable = async (el0, opt) => {
    const el = target(el0);
    if (!el.isConnected) return { ok: false, why: 'detached from the page' };
    if (!visible(el)) return { ok: false, why: 'not visible' };
    if (el.disabled || el.getAttribute('aria-disabled') === 'true') return { ok: false, why: 'disabled' };
    let r = el.getBoundingClientRect();
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) {
      el.scrollIntoView({ block: 'center', inline: 'center' });
      r = el.getBoundingClientRect();
    }
    await nextFrame();
    const r2 = el.getBoundingClientRect();
    if (r.x !== r2.x || r.y !== r2.y || r.width !== r2.width || r.height !== r2.height)
      return { ok: false, why: 'still moving', moving: true };
    const x = r2.left + Math.min(r2.width / 2, opt && opt.left ? 8 : r2.width / 2);
    const y = r2.top + r2.height / 2;
    const hit = document.elementFromPoint(x, y);
    if (!hit || !(hit === el || el.contains(hit) || (el.control && (hit === el.control)) ||
        (el0.labels && Array.from(el0.labels).some((l) => l === hit || l.contains(hit)))))
      return { ok: false, why: 'covered by ' + coverOf(hit) };
    return { ok: true, x, y };
  };

  /* fr: an iframe element; (x, y): a point in its viewport, hit-tested in
   * this document. */
  const hitFrame = (fr, x0, y0) => {
    const r = fr.getBoundingClientRect();
    const st = getComputedStyle(fr);
    const x = r.left + fr.clientLeft + parseFloat(st.paddingLeft) + x0;
    const y = r.top + fr.clientTop + parseFloat(st.paddingTop) + y0;
    const hit = document.elementFromPoint(x, y);
    if (hit !== fr) return { ok: false, x, y, why: 'covered by ' + coverOf(hit) + ' on the page around the frame' };
    return { ok: true, x, y };
  };

  const dateOrder = () => {
    const parts = new Intl.DateTimeFormat(navigator.language).formatToParts(new Date(2001, 10, 22));
    return parts.filter((p) => ['day', 'month', 'year'].includes(p.type)).map((p) => p.type[0]).join('');
  };
  const hourCycle = () => {
    const o = new Intl.DateTimeFormat(navigator.language, { hour: 'numeric' }).resolvedOptions();
    return o.hourCycle || (o.hour12 ? 'h12' : 'h23');
  };

  const info = (el) => {
    const tag = el.tagName.toLowerCase();
    /* a native date or time input is typed in the browser's own order */
    const dt = tag === 'input' && /^(date|time|datetime-local)$/i.test(el.type);
    return {
      dateOrder: dt ? dateOrder() : '', hourCycle: dt ? hourCycle() : '',
      tag, type: (el.type || '').toLowerCase(), editable: el.isContentEditable,
      placeholder: el.getAttribute('placeholder') || '', value: 'value' in el ? String(el.value) : norm(el.textContent),
      checked: !!el.checked, role: roleOf(el), describe: describe(el),
      focused: document.activeElement === el,
      options: tag === 'select' ? Array.from(el.options).map((o) => norm(o.label || o.textContent)) : [],
    };
  };

  /* A condition (cond.c's tree, variables already decided) now. */
  const holds = (k) => {
    switch (k.k) {
    case 'const': return !!k.v;
    case 'not': return !holds(k.a);
    case 'or': return holds(k.a) || holds(k.b);
    case 'url': return location.href.includes(k.text);
    case 'pageText': return (document.body ? document.body.innerText : '').includes(k.text);
    case 'visible': case 'hidden': case 'text': {
      const els = find(k.loc);
      const shown = els.filter(visible).length;
      if (k.k !== 'text') return k.k === 'visible' ? shown > 0 : shown === 0;
      if (!shown) return false;
      const el = pick(Object.assign({}, k.loc, { nth: k.loc.nth || 1 })).el;
      return !!el && norm(el.innerText || el.textContent).includes(k.text);
    }
    default: throw new Error('dom.js: unknown condition ' + k.k);
    }
  };

  switch (op) {
  case 'count': {
    const els = find(a);
    return { count: els.length, visible: els.filter(visible).length };
  }
  case 'resolve': {
    const { els, el } = pick(a);
    /* not exactly one: how many matched, a number (never an element) */
    if (!el) return els.length;
    return el;
  }
  case 'actionable': return actionable(a, b);
  case 'look': return (async () => {
    /* resolve, judge and describe in one call: b as for actionable */
    const { els, el } = pick(a);
    if (!el) return { count: els.length };
    const w = Object.assign({ count: 1 }, await actionable(el, b), { info: info(el) });
    Object.defineProperty(w, 'lookedAt', { value: el });
    return w;
  })();
  case 'hitFrame': return hitFrame(a, b, c);
  case 'hitFrameAt': {
    /* a: the locator of the iframe in this document */
    const { el } = pick(a);
    return el ? hitFrame(el, b, c) : { ok: false, why: 'its frame is gone' };
  }
  case 'info': return info(a);
  case 'conds': return a.map(holds);
  case 'focused': {
    const f = document.activeElement;
    return f ? { tag: f.tagName.toLowerCase(), type: (f.type || '').toLowerCase(), editable: f.isContentEditable, value: 'value' in f ? String(f.value) : '' } : null;
  }
  case 'selectOption': {
    const el = a, want = norm(b);
    const opts = Array.from(el.options);
    const o = opts.find((x) => norm(x.label || x.textContent) === want) || opts.find((x) => x.value === b) ||
      opts.find((x) => norm(x.label || x.textContent).toLowerCase() === want.toLowerCase());
    if (!o) return { ok: false, options: opts.map((x) => norm(x.label || x.textContent)) };
    el.focus();
    o.selected = true;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
    return { ok: true, value: el.value };
  }
  case 'option': return (async () => {
    /* the visible option of an open custom list whose text is the text,
     * judged as `actionable` does */
    const all = Array.from(document.querySelectorAll('[role=option],[role=menuitem],li,.option,[class*="option"]')).filter(visible);
    const hits = byName(all, a, (e) => norm(e.textContent));
    const inner = hits.filter((e) => !hits.some((o) => o !== e && e.contains(o)));
    if (inner.length < 1) return { count: 0 };
    return Object.assign({ count: 1 }, await actionable(inner[0]));
  })();
  case 'hourCycle': return hourCycle();
  case 'dateOrder': return dateOrder();
  case 'text': return norm(a.innerText || a.textContent);
  case 'attr': return a.getAttribute(b);
  case 'value': return 'value' in a ? String(a.value) : norm(a.textContent);
  case 'checked': return !!a.checked;
  case 'isFile': return a.tagName === 'INPUT' && a.type === 'file';
  case 'pageText': return document.body ? document.body.innerText : '';
  case 'url': return location.href;
  case 'change': return new Promise((resolve) => {
    /* Settles true on the first thing in this document that may change
     * what the agent sees (a DOM mutation, in open shadow roots too, an
     * input, a transition or animation ending, something loading, a
     * scroll, a resize, a history step), false after a ms. b: a locator
     * that found nothing just now: true at once when it finds something. */
    if (b && pick(b).el) return resolve(true);
    const root = document.documentElement;
    if (!root) return resolve(true);
    const opts = { subtree: true, childList: true, attributes: true, characterData: true };
    const evs = ['input', 'change', 'transitionend', 'animationend', 'load', 'scroll', 'readystatechange'];
    const wevs = ['resize', 'hashchange', 'popstate'];
    let timer = 0;
    const mo = new MutationObserver(() => end(true));
    const end = (changed) => {
      mo.disconnect();
      clearTimeout(timer);
      for (const t of evs) document.removeEventListener(t, onEv, true);
      for (const t of wevs) window.removeEventListener(t, onEv, true);
      resolve(changed);
    };
    const onEv = () => end(true);
    mo.observe(root, opts);
    let shadows = 0;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot && shadows++ < 64) mo.observe(el.shadowRoot, opts);
    }
    for (const t of evs) document.addEventListener(t, onEv, true);
    for (const t of wevs) window.addEventListener(t, onEv, true);
    timer = setTimeout(() => end(false), a);
  });
  case 'textOf': {
    const el = document.querySelector(a);
    return el ? norm(el.innerText || el.textContent) : null;
  }
  default: throw new Error('dom.js: unknown op ' + op);
  }
})
