/*
 * dom.js - the agent's eyes inside a frame: finding elements the way SOPs
 * name them, and judging whether a person could act on them now.
 *
 * Called through cdp_page_call_kept / cdp_handle_call as dom(op, a, b, c).
 * It never changes the page, except `selectOption` (native <select>, as a
 * person's pick would), `scroll` (into view) and `sensitiveMask` (a style
 * that `sensitiveUnmask` takes back, around a screenshot). It is embedded
 * into the binary at build time (agent/CMake) and installed once in each
 * document's context, held by the agent's object id only: no page script
 * can reach it. What it keeps between calls (the mask list, the press
 * guard, the change watcher) lives on the window under registry symbols.
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
  /* ---- Shadow DOM: open shadow roots are searched like the light tree,
   * the way Playwright's locators pierce them. Self-contained: the rest of
   * this file calls only these. */
  /* Every element under root, in document order, each open shadow root's
   * tree right after its host. */
  const deepElements = (root) => {
    const out = [];
    const visit = (n) => {
      for (let c = n.firstElementChild; c; c = c.nextElementSibling) {
        out.push(c);
        if (c.shadowRoot) visit(c.shadowRoot);
        visit(c);
      }
    };
    if (root) visit(root);
    return out;
  };
  const hasShadow = () => !!document.documentElement && deepElements(document.documentElement).some((e) => e.shadowRoot);
  /* The parent, or the host when e is at the top of a shadow tree. */
  const deepParent = (e) => e.parentElement || (e.parentNode && e.parentNode.host) || null;
  const deepContains = (a, b) => { for (let e = b; e; e = deepParent(e)) if (e === a) return true; return false; };
  /* Splits at top-level occurrences of sep (a comma, or descendant
   * whitespace), outside brackets, parentheses and quotes. */
  const splitSelector = (sel, comma) => {
    const parts = [];
    let depth = 0, quote = '', cur = '';
    for (let i = 0; i < sel.length; i++) {
      const ch = sel[i];
      if (quote) { if (ch === '\\') { cur += ch + (sel[++i] || ''); continue; } if (ch === quote) quote = ''; cur += ch; continue; }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '[' || ch === '(') depth++;
      else if (ch === ']' || ch === ')') depth--;
      if (!depth && comma && ch === ',') { parts.push(cur.trim()); cur = ''; continue; }
      if (!depth && !comma && /\s/.test(ch)) {
        /* whitespace around >, + or ~ is part of a compound group */
        const rest = sel.slice(i).trimStart(), before = cur.trimEnd();
        if (/^[>+~]/.test(rest) || /[>+~]$/.test(before)) { cur += ' '; continue; }
        if (cur.trim()) parts.push(cur.trim());
        cur = '';
        continue;
      }
      cur += ch;
    }
    if (cur.trim()) parts.push(cur.trim());
    return parts;
  };
  /* querySelectorAll across open shadow roots: each descendant step may
   * cross into a shadow tree (a > b, a + b stay within one tree). */
  const deepQueryAll = (sel, root) => {
    root = root || document;
    if (!hasShadow()) return Array.from(root.querySelectorAll(sel));
    const all = deepElements(root.nodeType === 9 ? root.documentElement : root);
    if (root.nodeType === 9) all.unshift(root.documentElement);
    const hits = new Set();
    for (const one of splitSelector(sel, true)) {
      const steps = splitSelector(one, false);
      const last = steps.pop();
      for (const el of all) {
        if (!el.matches(last)) continue;
        let e = deepParent(el), i = steps.length - 1;
        while (i >= 0 && e) { if (e.matches(steps[i])) i--; e = deepParent(e); }
        if (i < 0) hits.add(el);
      }
    }
    return all.filter((e) => hits.has(e));
  };
  /* elementFromPoint down through open shadow roots. */
  const deepElementFromPoint = (x, y) => {
    let el = document.elementFromPoint(x, y);
    while (el && el.shadowRoot) {
      const inner = el.shadowRoot.elementFromPoint(x, y);
      if (!inner || inner === el) break;
      el = inner;
    }
    return el;
  };
  const FIELD = 'input:not([type=hidden]),select,textarea,[contenteditable=""],[contenteditable=true],' +
    '[role=textbox],[role=combobox],[role=checkbox],[role=radio],[role=searchbox]';
  /* A custom element's host stands for the focusable control inside it. */
  const fieldOf = (el) => {
    if (!el || el.matches(FIELD) || !el.tagName.includes('-')) return el;
    const inner = el.shadowRoot ? deepElements(el.shadowRoot).find((e) => e.matches(FIELD)) : el.querySelector(FIELD);
    return inner || el;
  };
  /* For upload: the file inputs among the matches (a label may name a drop
   * zone and its input both); else each match's file input inside it;
   * else the matches (drop zones with no input: files are dropped). */
  const isFile = (e) => e.tagName === 'INPUT' && e.type === 'file';
  const fileTargets = (els) => {
    const inputs = els.filter(isFile);
    if (inputs.length) return inputs;
    return Array.from(new Set(els.map((e) => (e.shadowRoot && deepElements(e.shadowRoot).find(isFile)) ||
      e.querySelector('input[type=file]') || e)));
  };
  /* A custom element that shows something but gives no way in: its shadow
   * root is closed (or it draws everything itself). */
  const closedHost = (el) => !!el && el.tagName.includes('-') && !el.shadowRoot && !el.firstElementChild;
  const textOf = (id, from) => {
    const root = from && from.getRootNode ? from.getRootNode() : document;
    const e = root.getElementById ? root.getElementById(id) : document.getElementById(id);
    return e ? norm(e.textContent) : '';
  };

  /* The accessible name, close enough to the spec for portal markup. */
  const accName = (el) => {
    const lb = el.getAttribute && el.getAttribute('aria-labelledby');
    if (lb) return norm(lb.split(/\s+/).map((id) => textOf(id, el)).join(' '));
    const al = el.getAttribute && el.getAttribute('aria-label');
    if (al) return norm(al);
    if (el.labels && el.labels.length) return norm(Array.from(el.labels).map((l) => l.textContent).join(' '));
    if (el.id) {
      const l = (el.getRootNode().querySelector ? el.getRootNode() : document).querySelector('label[for="' + CSS.escape(el.id) + '"]');
      if (l) return norm(l.textContent);
    }
    if (el.matches && el.matches(WIDGETS)) {
      const l = looseLabelOf(el);
      if (l) return norm(l.textContent).replace(/\s*[*:]+$/, '');
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
    if (tag === 'th') {
      const scope = (el.getAttribute('scope') || '').toLowerCase();
      const tr = el.parentElement;
      if (scope === 'row' || (scope !== 'col' && tr && tr.querySelector(':scope > td') &&
          !(tr.parentElement && tr.parentElement.tagName === 'THEAD'))) return 'rowheader';
      return 'columnheader';
    }
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
    if (l.htmlFor) return l.getRootNode().getElementById ? l.getRootNode().getElementById(l.htmlFor) : null;
    return l.querySelector('input,select,textarea,[contenteditable=""],[contenteditable=true],[role=combobox],[role=textbox]');
  };

  /* Loose labels (ours, beyond the accessible-name rules): a <label> tied
   * to no control names the nearest form control or ARIA widget that
   * follows it in its container, up to three levels up, with no other label
   * in between. */
  const WIDGETS = 'input:not([type=hidden]),select,textarea,[contenteditable=""],[contenteditable=true],' +
    '[role=combobox],[role=textbox],[role=listbox],[role=searchbox],[role=spinbutton],[role=slider],' +
    '[role=checkbox],[role=radio],[role=switch],[role=radiogroup],button[aria-haspopup],[aria-haspopup=listbox]';
  const looseControl = (l) => {
    let box = l.parentElement;
    for (let up = 0; box && up < 3; up++, box = box.parentElement) {
      for (const e of box.querySelectorAll(WIDGETS + ',label')) {
        if (e === l || !(l.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) || l.contains(e)) continue;
        if (e.tagName === 'LABEL') return null; /* another label comes first: it is that one's */
        if (e.closest('label') && e.closest('label') !== l) return null;
        return e;
      }
    }
    return null;
  };
  const looseLabelOf = (el) => {
    let box = el.parentElement;
    for (let up = 0; box && up < 3; up++, box = box.parentElement) {
      const before = Array.from(box.querySelectorAll('label')).filter(
        (l) => l.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
      const l = before[before.length - 1];
      if (l) return !l.control && !l.hasAttribute('for') && looseControl(l) === el ? l : null;
    }
    return null;
  };
  /* a label whose for= names a missing id is broken, not loose */
  const controlOrLoose = (l) => controlOfLabel(l) || (l.hasAttribute('for') ? null : looseControl(l));

  /* A locator that matched nothing: the elements whose label, name, role
   * or text come closest to what it asked for, each as an SOP locator. Only
   * names close to the SOP's own text are returned (page text far from it
   * may be a patient's). */
  const similarity = (a, b) => {
    a = a.toLowerCase(); b = b.toLowerCase();
    if (!a || !b || a.length > 80 || b.length > 80) return 0;
    if (a === b) return 1;
    if (a.includes(b) || b.includes(a)) return 0.9 * Math.min(a.length, b.length) / Math.max(a.length, b.length) + 0.1;
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]; row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const cur = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return 1 - row[b.length] / Math.max(a.length, b.length);
  };
  const SOP_ROLES = ['button', 'link', 'checkbox', 'radio', 'textbox', 'combobox', 'heading', 'tab',
    'option', 'menuitem', 'listbox', 'dialog', 'row', 'cell', 'img', 'searchbox'];
  const quote = (t) => '"' + t.replace(/"/g, "'") + '"';
  const candidates = (loc) => {
    const want = norm(loc.value);
    const out = [];
    const add = (el, by, name, line) => {
      const score = similarity(name, want);
      if (score >= 0.5 && !out.some((o) => o.line === line)) out.push({ by, name, line, score, describe: describe(el) });
    };
    for (const l of document.querySelectorAll('label')) {
      if (!visible(l)) continue;
      const t = norm(l.textContent).replace(/\s*[*:]+$/, '');
      if (t) add(l, controlOrLoose(l) ? 'label' : 'label (tied to no control)', t, 'label ' + quote(t));
    }
    for (const el of document.querySelectorAll('a[href],button,input,select,textarea,[role],[contenteditable]')) {
      if (!visible(el) && el.type !== 'checkbox' && el.type !== 'radio') continue;
      const r = roleOf(el), n = accName(el);
      if (!r || !n) continue;
      add(el, 'role ' + r, n, (SOP_ROLES.includes(r) ? r : 'role ' + r) + ' ' + quote(n));
      if (el.id && similarity(el.id, want) >= 0.5) add(el, 'id', el.id, quote('#' + el.id));
    }
    if (loc.kind === 'text' || loc.kind === 'role') {
      for (const el of document.querySelectorAll('button,a,h1,h2,h3,h4,th,legend,summary,[role=tab],[role=heading]')) {
        const t = norm(el.innerText || el.textContent);
        if (visible(el) && t.length <= 60) add(el, 'text', t, 'text ' + quote(t));
      }
    }
    return out.sort((x, y) => y.score - x.score).slice(0, 3);
  };

  /* ---- Fingerprints (agent/fingerprint.h): what identifies an element
   * apart from its locator. Only what the page gives controls and
   * structure: role, accessible name, label text, tag, id, attribute
   * NAMES (never a value), and the labels, legends and headings just
   * before it in document order (never a cell's or a paragraph's text).
   * The agent scrubs any task value out of them before keeping them. */
  const NEAR = 'label,legend,h1,h2,h3,h4,h5,h6,[role=heading]';
  const STATE_ATTRS = /^(value|style|checked|selected|disabled|hidden|aria-invalid|aria-expanded|aria-activedescendant|aria-checked|aria-selected|tabindex)$/;
  const short = (t) => (t.length <= 80 ? t : '');
  const labelOf = (el) => {
    if (el.labels && el.labels.length) return norm(Array.from(el.labels).map((l) => l.textContent).join(' ')).replace(/\s*[*:]+$/, '');
    const lb = el.getAttribute && el.getAttribute('aria-labelledby');
    if (lb) return norm(lb.split(/\s+/).map((id) => textOf(id, el)).join(' '));
    const l = el.matches && el.matches(WIDGETS) ? looseLabelOf(el) : null;
    return l ? norm(l.textContent).replace(/\s*[*:]+$/, '') : '';
  };
  const fpOf = (el, near) => ({
    role: roleOf(el), name: short(accName(el)), label: short(labelOf(el)), tag: el.tagName.toLowerCase(),
    type: (el.getAttribute('type') || '').toLowerCase(), id: el.id || '',
    attrs: Array.from(el.attributes).map((a) => a.name).filter((n) => !STATE_ATTRS.test(n)).sort(),
    near: near.filter((t) => t !== labelOf(el)).slice(-3),
  });
  /* The fingerprints of the elements in want (a Set), each with the last
   * labels seen before it: one walk of the document, shadow trees too. */
  const fingerprints = (want) => {
    const out = new Map(), recent = [];
    for (const e of deepElements(document.documentElement)) {
      if (want.has(e)) out.set(e, fpOf(e, recent.slice()));
      if (e.matches(NEAR)) {
        const t = norm(e.textContent).replace(/\s*[*:]+$/, '');
        if (t && t.length <= 60 && recent[recent.length - 1] !== t) { recent.push(t); if (recent.length > 4) recent.shift(); }
      }
    }
    return out;
  };
  /* The SOP locator that names el alone, from what a person sees: its
   * label, its role and name, a frame's title. null when none does. */
  const FIELDISH = /^(textbox|combobox|searchbox|checkbox|radio|listbox|spinbutton|slider|switch)$/;
  const unique = (loc, el) => { try { const els = find(loc); return els.length === 1 && els[0] === el; } catch (x) { return false; } };
  const namingLoc = (el, f) => {
    const q = (t) => '"' + t + '"';
    if (f.label && !/["{}]/.test(f.label) && (FIELDISH.test(f.role) || /^(input|select|textarea)$/.test(f.tag))) {
      const loc = { kind: 'label', value: f.label, nth: 0 };
      if (unique(loc, el) || unique(loc, fieldOf(el))) return { loc, line: 'label ' + q(f.label) };
    }
    if (f.role && f.name && SOP_ROLES.includes(f.role) && !/["{}]/.test(f.name)) {
      const loc = { kind: 'role', role: f.role, value: f.name, nth: 0 };
      if (unique(loc, el)) return { loc, line: f.role + ' ' + q(f.name) };
    }
    for (const a of ['title', 'name', 'aria-label']) {
      const v = el.getAttribute(a);
      if (!v || /["'{}\]\\]/.test(v) || v.length > 60) continue;
      const loc = { kind: 'css', value: f.tag + '[' + a + "='" + v + "']", nth: 0 };
      if (unique(loc, el)) return { loc, line: 'css ' + q(loc.value) };
    }
    return null;
  };
  /* Heal: every element a step could have acted on, fingerprinted, with
   * the locator that would name it (C scores them; agent/locate.c). */
  const CAND = 'a[href],button,input:not([type=hidden]),select,textarea,[role],[contenteditable],iframe,frame,summary';
  const fpCandidates = () => {
    const els = deepQueryAll(CAND).filter((e) => visible(e) || e.type === 'checkbox' || e.type === 'radio' || isFile(e)).slice(0, 400);
    const fps = fingerprints(new Set(els));
    return els.map((e) => { const f = fps.get(e); const n = namingLoc(e, f); if (n) { f.line = n.line; f.loc = n.loc; } return f; });
  };

  /* ---- Tables and scopes: a row by one of its cells' text (or its text),
   * a cell by its column's header (or its own text), and `... in LOCATOR`. */
  const cellsOf = (tr) => Array.from(tr.children).filter((c) => /^(TD|TH)$/.test(c.tagName) ||
    /^(cell|gridcell|rowheader|columnheader)$/.test(c.getAttribute('role') || ''));
  const textIn = (e) => norm(e.innerText || e.textContent);
  const rowsByName = (rows, v) => {
    const want = norm(v).toLowerCase();
    for (const t of [(n) => n === norm(v), (n) => n.toLowerCase() === want]) {
      const hit = rows.filter((r) => cellsOf(r).some((c) => t(textIn(c))));
      if (hit.length) return hit;
    }
    return byName(rows, v, textIn);
  };
  const headerOf = (cell) => {
    const tr = cell.parentElement;
    const table = tr && tr.closest('table,[role=table],[role=grid],[role=treegrid]');
    if (!table) return '';
    const isHead = (r) => cellsOf(r).length && cellsOf(r).every((c) => c.tagName === 'TH' || c.getAttribute('role') === 'columnheader');
    const head = (table.tHead && table.tHead.rows.length && table.tHead.rows[table.tHead.rows.length - 1]) ||
      Array.from(table.querySelectorAll('tr,[role=row]')).find(isHead);
    if (!head || head === tr) return '';
    let idx = 0;
    for (const c of cellsOf(tr)) { if (c === cell) break; idx += c.colSpan || 1; }
    let j = 0;
    for (const h of cellsOf(head)) {
      const span = h.colSpan || 1;
      if (idx >= j && idx < j + span) return textIn(h);
      j += span;
    }
    return '';
  };
  const cellsByName = (v) => {
    const cells = deepQueryAll('td,th,[role=cell],[role=gridcell],[role=rowheader]').filter(visible);
    const byHead = byName(cells.filter((c) => headerOf(c)), v, headerOf);
    return byHead.length ? byHead : byName(cells, v, textIn);
  };
  const inScope = (loc) => {
    let scopes = find(loc.within);
    if (loc.within.nth) scopes = [loc.within.nth > 0 ? scopes[loc.within.nth - 1] : scopes[scopes.length - 1]].filter(Boolean);
    return find(Object.assign({}, loc, { within: null })).filter((e) => scopes.some((sc) => sc !== e && deepContains(sc, e)));
  };

  const find = (loc) => {
    if (loc.within) return inScope(loc);
    const kind = loc.kind, v = loc.value;
    let els = [];
    if (kind === 'css') {
      els = deepQueryAll(v);
    } else if (kind === 'xpath') {
      const r = document.evaluate(v, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      for (let i = 0; i < r.snapshotLength; i++) if (r.snapshotItem(i).nodeType === 1) els.push(r.snapshotItem(i));
    } else if (kind === 'text') {
      /* the innermost visible elements whose text is the text */
      const all = deepElements(document.body).filter(
        (e) => !['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(e.tagName) && visible(e));
      const hits = byName(all, v, (e) => norm(e.innerText || e.textContent));
      els = hits.filter((e) => !hits.some((o) => o !== e && deepContains(e, o)));
    } else if (kind === 'label') {
      const labels = deepQueryAll('label').filter(visible);
      const want = (l) => norm(l.textContent).replace(/\s*[*:]+$/, '');
      const fromLabels = byName(labels, v, want).map(controlOrLoose).filter(Boolean);
      /* a hidden file input behind its drop zone counts for upload */
      const aria = byName(deepQueryAll('[aria-label],[aria-labelledby]').filter((e) => visible(e) || (loc.file && isFile(e))), v, accName);
      els = fromLabels.length ? fromLabels : aria;
      if (!els.length) {
        els = byName(deepQueryAll('input[placeholder],textarea[placeholder]').filter(visible),
          v, (e) => norm(e.placeholder));
      }
      els = Array.from(new Set(els));
    } else if (kind === 'role') {
      const all = deepElements(document.documentElement).filter((e) => roleOf(e) === loc.role);
      const shown = all.filter((e) => visible(e) || (e.type === 'checkbox' || e.type === 'radio'));
      els = loc.role === 'row' ? rowsByName(shown, v) : loc.role === 'cell' ? cellsByName(v) : byName(shown, v, accName);
    }
    return els;
  };

  const pick = (loc) => {
    let els = find(loc);
    if (loc.field) els = Array.from(new Set(els.map(fieldOf)));
    if (loc.file) els = fileTargets(els);
    if (loc.nth > 0) return { els, el: els[loc.nth - 1] || null };
    if (loc.nth < 0) return { els, el: els[els.length - 1] || null };
    return { els, el: els.length === 1 ? els[0] : null };
  };

  /* A locator as {{text ...}} writes it: css "...", xpath "...", text "...",
   * label "...", [role] NAME "..." (or '...'), after first, last or nth N;
   * anything else is a CSS selector. */
  const parseLoc = (src) => {
    const one = /^(?:(first|last|nth\s+(\d+))\s+)?(?:role\s+)?([a-z]+)\s+(["'])((?:(?!\4)[^\\]|\\.)*)\4(?:\s+(first|last|nth\s+(\d+)))?/s;
    const m = one.exec(String(src).trim());
    if (!m) return { kind: 'css', value: String(src).trim(), nth: 0 };
    const kind = ['css', 'xpath', 'text', 'label'].includes(m[3]) ? m[3] : 'role';
    const which = m[1] || m[6], num = m[2] || m[7];
    const nth = which === 'first' ? 1 : which === 'last' ? -1 : num ? Number(num) : 0;
    const loc = { kind, role: kind === 'role' ? m[3] : undefined, value: m[5].replace(/\\(.)/g, '$1'), nth };
    const rest = String(src).trim().slice(m[0].length);
    const within = /^\s+in\s+(.+)$/s.exec(rest);
    if (within) loc.within = parseLoc(within[1]);
    else if (rest.trim()) return { kind: 'css', value: String(src).trim(), nth: 0 };
    return loc;
  };
  /* The text of the locator's nth match, or of its first visible match
   * with any text: null when nothing matches, false when no match is
   * visible, "" when the visible ones are empty. */
  const firstText = (loc) => {
    const els = find(loc);
    if (!els.length) return null;
    const textOfEl = (e) => norm(e.innerText || e.textContent);
    if (loc.nth) { const e = loc.nth > 0 ? els[loc.nth - 1] : els[els.length - 1]; return e ? textOfEl(e) : null; }
    const e = els.find((x) => visible(x) && textOfEl(x));
    return e ? textOfEl(e) : els.some(visible) ? '' : false;
  };

  /* The next animation frame: a box that is the same in two consecutive
   * frames is "stable" (CSS animations and transitions are updated, and
   * earlier rAF callbacks have run, before this one). */
  const nextFrame = () => new Promise((r) => requestAnimationFrame(r));

  /* What `change` listens for: mutations anywhere in the tree (and in up
   * to 64 open shadow roots), and these events. */
  const CHANGE_OPTS = { subtree: true, childList: true, attributes: true, characterData: true };
  const CHANGE_EVENTS = ['input', 'change', 'transitionend', 'animationend', 'load', 'scroll', 'readystatechange'];
  const CHANGE_WINDOW_EVENTS = ['resize', 'hashchange', 'popstate'];
  const observeAll = (mo, root) => {
    mo.observe(root, CHANGE_OPTS);
    let shadows = 0;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot && shadows++ < 64) mo.observe(el.shadowRoot, CHANGE_OPTS);
    }
  };
  /* A look and the `change` call after it are two calls: what happened in
   * between would be lost. The watcher, made by the first call in a
   * document and kept on its window, notes when it last saw a change of
   * those kinds (performance.now(), -Infinity: none yet). The slack
   * covers the call's way from the agent to the page. */
  const LOOK_SLACK_MS = 10;
  const watcher = (() => {
    const key = Symbol.for('portier.watch');
    if (window[key]) return window[key];
    const w = { at: -Infinity };
    /* a window the page made non-extensible keeps none: then no watcher
     * (each call would leave one behind), and `change` sees only what
     * comes after it begins */
    try { Object.defineProperty(window, key, { value: w }); } catch (e) { return w; }
    const note = () => { w.at = performance.now(); };
    observeAll(new MutationObserver(note), document);
    for (const t of CHANGE_EVENTS) document.addEventListener(t, note, true);
    for (const t of CHANGE_WINDOW_EVENTS) window.addEventListener(t, note, true);
    return w;
  })();

  /* For radios and checkboxes hidden behind a styled label, act on the
   * label a person would click. */
  const target = (el) => {
    if (!visible(el) && (el.type === 'checkbox' || el.type === 'radio') && el.labels && el.labels.length)
      return Array.from(el.labels).find(visible) || el;
    return el;
  };

  /* Fields holding a secret, a one-time code, an answer or what the SOP
   * marks sensitive are masked in every screenshot. sensitiveMark adds
   * element a to this document's list (the agent marks a field as it fills
   * it); sensitiveMask hides the text of every marked field still in the
   * document; sensitiveUnmask puts back exactly what it changed. Both
   * return how many fields they touched. The list lives on the window
   * under a registry symbol: dom.js keeps no state of its own. */
  const sensitive = (op, el) => {
    const key = Symbol.for('portier.sensitive');
    const st = window[key] || (window[key] = { list: [], saved: new Map() });
    if (op === 'sensitiveMark') {
      if (!st.list.includes(el)) st.list.push(el);
      return st.list.length;
    }
    if (op === 'sensitiveUnmask') {
      const n = st.saved.size;
      for (const [f, s] of st.saved) {
        if (s.attr === null) f.removeAttribute('style');
        else {
          f.style.removeProperty('-webkit-text-security');
          if (s.value) f.style.setProperty('-webkit-text-security', s.value, s.priority);
          if (f.getAttribute('style') !== s.attr) f.setAttribute('style', s.attr);
        }
      }
      st.saved.clear();
      return n;
    }
    st.list = st.list.filter((f) => f.isConnected);
    for (const f of st.list) {
      if (st.saved.has(f)) continue;
      st.saved.set(f, {
        attr: f.getAttribute('style'),
        value: f.style.getPropertyValue('-webkit-text-security'),
        priority: f.style.getPropertyPriority('-webkit-text-security'),
      });
      f.style.setProperty('-webkit-text-security', 'disc', 'important');
    }
    return st.saved.size;
  };

  /* Where the next press landed: armHit(el) listens (capture phase, on
   * this window, ahead of the page's own handlers on its elements) for the
   * next mousedown; hitResult says whether it reached el, and disarms.
   * null: no press reached this document at all (something in another
   * document took it, such as a dialog the top page put up over the
   * frame). The guard lives on the window, as the mask list does. */
  const hitKey = Symbol.for('portier.hit');
  const hitResult = () => {
    const g = window[hitKey];
    if (!g) return null;
    window.removeEventListener('mousedown', g.on, true);
    delete window[hitKey];
    return g.hit;
  };
  const armHit = (el) => {
    hitResult();
    const g = { hit: null };
    g.on = (ev) => {
      g.hit = deepContains(el, ev.composedPath()[0]);
      window.removeEventListener('mousedown', g.on, true);
    };
    window[hitKey] = g;
    window.addEventListener('mousedown', g.on, true);
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
    const hit = deepElementFromPoint(x, y);
    if (!hit || !(hit === el || deepContains(el, hit) || (el.control && (hit === el.control)) ||
        (el0.labels && Array.from(el0.labels).some((l) => l === hit || deepContains(l, hit)))))
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
    const hit = deepElementFromPoint(x, y);
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
      focused: document.activeElement === el, closed: closedHost(el),
      options: tag === 'select' ? Array.from(el.options).map((o) => norm(o.label || o.textContent)) : [],
    };
  };

  /* The page's text: innerText stops at shadow hosts, so each open shadow
   * tree's text is added. */
  const pageText = () => {
    let t = document.body ? document.body.innerText : '';
    for (const h of deepElements(document.body).filter((e) => e.shadowRoot))
      for (let c = h.shadowRoot.firstElementChild; c; c = c.nextElementSibling)
        if (!['STYLE', 'SCRIPT'].includes(c.tagName)) t += '\n' + (c.innerText || '');
    return t;
  };
  /* A text condition's test (cond.c's text_holds): contains, or is (spaces
   * trimmed and collapsed); case ignored unless exact. */
  const textTest = (k, s) => {
    const fold = (x) => (k.exact ? x : x.toLowerCase());
    if (k.op === 'is') return fold(String(s).replace(/\s+/g, ' ').trim()) === fold(k.text.replace(/\s+/g, ' ').trim());
    return fold(String(s)).includes(fold(k.text));
  };
  /* A condition (cond.c's tree, variables and templates already decided) now. */
  const holds = (k) => {
    switch (k.k) {
    case 'const': return !!k.v;
    case 'not': return !holds(k.a);
    case 'or': return holds(k.a) || holds(k.b);
    case 'and': return holds(k.a) && holds(k.b);
    case 'url': return location.href.includes(k.text);
    case 'pageText': return textTest(k, pageText());
    case 'visible': case 'hidden': case 'text': {
      const els = find(k.loc);
      const shown = els.filter(visible).length;
      if (k.k !== 'text') return k.k === 'visible' ? shown > 0 : shown === 0;
      if (!shown) return false;
      const el = pick(Object.assign({}, k.loc, { nth: k.loc.nth || 1 })).el;
      /* the element's text as op `text` gives it (cond_read's path):
       * spaces collapsed, so the lines of a list read as one line */
      return !!el && textTest(k, norm(el.innerText || el.textContent));
    }
    default: throw new Error('dom.js: unknown condition ' + k.k);
    }
  };

  switch (op) {
  case 'candidates': return candidates(a);
  case 'fingerprint': return fingerprints(new Set([a])).get(a);
  case 'fpCandidates': return fpCandidates();
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
    /* b.fp: a run that records fingerprints gets the element's here, in
     * the same call */
    if (b && b.fp && w.ok) w.fp = fingerprints(new Set([el])).get(el);
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
  case 'hasFocus': {
    /* a: has it the keyboard (this document focused, a the deepest active
     * element through open shadow roots)? */
    let f = document.activeElement;
    while (f && f.shadowRoot && f.shadowRoot.activeElement) f = f.shadowRoot.activeElement;
    return document.hasFocus() && f === a;
  }
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
    const all = deepQueryAll('[role=option],[role=menuitem],li,.option,[class*="option"]').filter(visible);
    const hits = byName(all, a, (e) => norm(e.textContent));
    const inner = hits.filter((e) => !hits.some((o) => o !== e && deepContains(e, o)));
    if (inner.length < 1) return { count: 0 };
    const r = Object.assign({ count: 1 }, await actionable(inner[0]));
    if (r.ok) armHit(inner[0]);
    return r;
  })();
  case 'hitResult': return hitResult();
  case 'hourCycle': return hourCycle();
  case 'dateOrder': return dateOrder();
  case 'text': return norm(a.innerText || a.textContent);
  case 'attr': return a.getAttribute(b);
  case 'value': return 'value' in a ? String(a.value) : norm(a.textContent);
  case 'checked': return !!a.checked;
  case 'isFile': return a.tagName === 'INPUT' && a.type === 'file';
  case 'pageText': return pageText();
  case 'url': return location.href;
  case 'change': return new Promise((resolve) => {
    /* Settles true on the first thing in this document that may change
     * what the agent sees (a DOM mutation, in open shadow roots too, an
     * input, a transition or animation ending, something loading, a
     * scroll, a resize, a history step), false after a ms. b: a locator
     * that found nothing just now: true at once when it finds something.
     * c: how many ms ago the caller's last look began: true at once when
     * the watcher saw something since (between the look and this call). */
    if (typeof c === 'number' && performance.now() - watcher.at <= c + LOOK_SLACK_MS) return resolve(true);
    if (b && pick(b).el) return resolve(true);
    const root = document.documentElement;
    if (!root) return resolve(true);
    let timer = 0;
    const mo = new MutationObserver(() => end(true));
    const end = (changed) => {
      mo.disconnect();
      clearTimeout(timer);
      for (const t of CHANGE_EVENTS) document.removeEventListener(t, onEv, true);
      for (const t of CHANGE_WINDOW_EVENTS) window.removeEventListener(t, onEv, true);
      resolve(changed);
    };
    const onEv = () => end(true);
    observeAll(mo, root);
    for (const t of CHANGE_EVENTS) document.addEventListener(t, onEv, true);
    for (const t of CHANGE_WINDOW_EVENTS) window.addEventListener(t, onEv, true);
    timer = setTimeout(() => end(false), a);
  });
  case 'textOf': { const t = firstText(parseLoc(a)); return t === false ? '' : t; }
  case 'firstText': return firstText(a);
  case 'sensitiveMark': case 'sensitiveMask': case 'sensitiveUnmask': return sensitive(op, a);
  default: throw new Error('dom.js: unknown op ' + op);
  }
})
