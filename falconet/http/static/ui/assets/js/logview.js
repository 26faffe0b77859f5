// Virtualized log viewer of one execution: only the rows in view are in the DOM. Stored lines are read
// page by page from GET /logs/{id}?page&size (the tail first, older pages as they scroll into view);
// live lines are appended in memory and drawn once per animation frame. Grouped by task run, each group
// is a header row followed by its lines (counts from GET /logs/{id}/counts).
import { h, replace, formatTime } from './util.js';
import { getJson, enc } from './api.js';

export const ROW = 18;        // px per text line (matches .vlog-row line-height)
const HEAD = 30;              // px per group header
const PAGE = 500;             // lines per API page
const OVERSCAN = 10;          // rows drawn beyond each edge
const MAX_DOM = 8e6;          // px: taller lists are scrolled through a scaled spacer
const EXP_PAD = 16;           // px added to an expanded message (its own horizontal scrollbar)
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
const lineKey = (l) => `${l.taskRunId || ''}|${l.attemptNumber ?? ''}|${l.timestamp}|${l.level}|${l.message}`;

/** Does a live line pass the filter the server applies to stored ones (same semantics)? */
export function logPasses(l, f) {
  if (LEVELS.indexOf(l.level) < LEVELS.indexOf(f.level || 'TRACE')) return false;
  if (f.taskRunId && l.taskRunId !== f.taskRunId) return false;
  if (f.text && !String(l.message).toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

/**
 * createLogView(executionId, {groups, groupTitle, emptyText})
 *   groups(): ordered task-run ids for grouped mode; groupTitle(key) → nodes of a group header
 *   ('' is the execution's own lines); emptyText(filter) → text when no line matches.
 * Returns {element, load(filter), push(line), refreshTitles(), setFollow(on), destroy(), stats}.
 */
export function createLogView(executionId, opts) {
  const box = h('div', { class: 'vlog', role: 'log', 'aria-label': 'Execution logs', tabindex: '0' });
  const spacer = h('div', { class: 'vlog-spacer' });
  const layer = h('div', { class: 'vlog-layer' });
  const empty = h('p', { class: 'muted vlog-empty', hidden: true });
  box.append(spacer, layer, empty);

  let filter = { level: 'TRACE', text: '', taskRunId: '', grouped: false };
  let segs = [];               // [{key, header, collapsed, stored, pages: Map, live: [], exp: Map(i → lines)}]
  let generation = 0;          // bumps on every load: late page answers of an older load are dropped
  let pending = null;          // live lines received while a load is under way (deduplicated against it)
  let follow = true;
  let stick = true;            // the view is at the bottom: new lines keep it there
  let viewH = 0;
  let frame = 0;
  let alive = true;
  const nodes = new Map();     // row key → element in the layer
  const stats = { pagesFetched: 0, rowsInDom: 0 };

  const segLines = (s) => s.stored + s.live.length;
  const extraOf = (n) => (n - 1) * ROW + EXP_PAD;
  function segHeight(s) {
    let y = s.header ? HEAD : 0;
    if (s.collapsed) return y;
    y += segLines(s) * ROW;
    for (const n of s.exp.values()) y += extraOf(n);
    return y;
  }
  const totalHeight = () => segs.reduce((a, s) => a + segHeight(s), 0);
  const sortedExp = (s) => [...s.exp.entries()].sort((a, b) => a[0] - b[0]);

  function lineTop(s, i) {
    let y = i * ROW;
    for (const [e, n] of s.exp) if (e < i) y += extraOf(n);
    return y;
  }
  function lineAt(s, o) {
    let acc = 0;
    for (const [e, n] of sortedExp(s)) {
      const top = e * ROW + acc;
      if (o < top) break;
      if (o < top + ROW + extraOf(n)) return e;
      acc += extraOf(n);
    }
    return Math.max(0, Math.floor((o - acc) / ROW));
  }

  function query(s, page) {
    const q = { minLevel: filter.level === 'TRACE' ? '' : filter.level, q: filter.text, page, size: PAGE };
    if (s.key === null) q.taskRunId = filter.taskRunId;
    else if (s.key === '') q.outsideTaskRuns = 'true';
    else q.taskRunId = s.key;
    return q;
  }

  function entryAt(s, i) {
    if (i >= s.stored) return s.live[i - s.stored];
    const p = Math.floor(i / PAGE);
    const page = s.pages.get(p);
    if (Array.isArray(page)) return page[i - p * PAGE];
    if (!page) fetchPage(s, p);
    return null;
  }

  async function fetchPage(s, p) {
    const gen = generation;
    s.pages.set(p, 'loading');
    stats.pagesFetched += 1;
    try {
      const res = await getJson(`/logs/${enc(executionId)}`, query(s, p + 1));
      if (gen !== generation || !alive) return;
      s.pages.set(p, res.results || []);
    } catch (e) {
      if (gen === generation) s.pages.delete(p);
      return;
    }
    schedule();
  }

  //// loading

  /** (Re)read the stored lines for `f` (level, text, taskRunId, grouped): counts and the tail first. */
  async function load(f) {
    if (f) filter = { ...filter, ...f };
    const gen = ++generation;
    pending = [];
    let next;
    try {
      next = await readSegments(filter, gen);
    } catch (e) {
      if (gen !== generation) return;
      pending = null;
      segs = [];
      empty.hidden = false;
      empty.textContent = `Could not load the logs: ${e.message || e}`;
      return;
    }
    if (!next || gen !== generation) return;
    segs = next;
    nodes.forEach((n) => n.remove());
    nodes.clear();
    for (const row of rows.values()) pool.push(row);
    rows.clear();
    const early = pending;
    pending = null;
    for (const l of early) push(l);
    stick = follow;
    schedule();
  }

  async function readSegments(fl, gen) {
    const seg = (key, header, stored) => ({ key, header, collapsed: false, stored, pages: new Map(), live: [], exp: new Map() });
    let next;
    if (fl.grouped && !fl.taskRunId) {
      const { counts } = await getJson(`/logs/${enc(executionId)}/counts`, { minLevel: fl.level === 'TRACE' ? '' : fl.level, q: fl.text });
      if (gen !== generation) return null;
      const keys = opts.groups().filter((k) => k in counts);
      for (const k of Object.keys(counts)) if (!keys.includes(k)) { if (k === '') keys.unshift(k); else keys.push(k); }
      const old = new Map(segs.filter((s) => s.header).map((s) => [s.key, s.collapsed]));
      next = keys.map((k) => Object.assign(seg(k, true, counts[k]), { collapsed: old.get(k) || false }));
    } else {
      const s = seg(null, false, 0);
      const first = await getJson(`/logs/${enc(executionId)}`, query(s, 1));
      if (gen !== generation) return null;
      s.stored = first.total;
      s.pages.set(0, first.results || []);
      next = [s];
    }
    // the tail page of each group: what is drawn first, and what live lines already stored are checked against
    await Promise.all(next.map(async (s) => {
      const p = Math.max(0, Math.floor((s.stored - 1) / PAGE));
      if (s.pages.has(p) || !s.stored) return;
      const res = await getJson(`/logs/${enc(executionId)}`, query(s, p + 1));
      s.pages.set(p, res.results || []);
    }));
    return next;
  }

  function tailKeys(s) {
    const p = Math.max(0, Math.floor((s.stored - 1) / PAGE));
    const page = s.pages.get(p);
    return new Set(Array.isArray(page) ? page.map(lineKey) : []);
  }

  /** A live line: kept (if it passes the filter) and drawn with the others of this frame. */
  function push(l) {
    if (!l || !logPasses(l, filter)) return;
    if (pending) { pending.push(l); return; }
    let s;
    if (segs.length === 1 && segs[0].key === null) s = segs[0];
    else {
      const key = l.taskRunId || '';
      s = segs.find((x) => x.key === key);
      if (!s) {
        s = { key, header: true, collapsed: false, stored: 0, pages: new Map(), live: [], exp: new Map() };
        segs.push(s);
      }
    }
    if (s.live.length === 0 && s.stored && s.dedupe === undefined) s.dedupe = tailKeys(s);
    if (s.dedupe && s.dedupe.size) {
      const k = lineKey(l);
      if (s.dedupe.has(k)) { s.dedupe.delete(k); return; }
    }
    s.live.push(l);
    schedule();
  }

  //// drawing

  function schedule() {
    if (frame || !alive) return;
    frame = requestAnimationFrame(draw);
  }

  function headFor(key) {
    let n = nodes.get(key);
    if (!n) { n = h('div', { class: 'vlog-head' }); nodes.set(key, n); layer.appendChild(n); }
    return n;
  }

  // line rows are recycled: a row scrolled out of view is refilled for one scrolled in (no DOM churn)
  const rows = new Map();     // `${segment}:${line}` → row element
  const pool = [];            // hidden rows ready for reuse
  function newRow() {
    const p = {
      lt: h('span', { class: 'lt' }), lvl: h('span', { class: 'lvl' }), tk: h('span', { class: 'muted' }),
      msg: document.createTextNode(''),
      more: h('button', { type: 'button', class: 'vlog-more', hidden: true, onclick: () => toggle(row) }),
    };
    const row = h('div', { class: 'vlog-row' }, p.lt, p.lvl, h('span', { class: 'lm' }, p.tk, p.msg), p.more);
    row._p = p;
    layer.appendChild(row);
    return row;
  }
  function toggle(row) {
    const { _s: s, _i: i } = row;
    if (s.exp.has(i)) s.exp.delete(i); else s.exp.set(i, String(row._entry.message ?? '').split('\n').length);
    row._entry = null;
    stick = false;
    schedule();
  }

  function fillLine(row, l, s, i) {
    const p = row._p;
    const n = s.exp.get(i);
    const msg = String(l.message ?? '');
    const nl = msg.indexOf('\n');
    const multi = nl >= 0;
    row.className = n ? 'vlog-row open' : 'vlog-row';
    row.dataset.level = l.level;
    p.lt.textContent = formatTime(l.timestamp);
    p.lvl.textContent = l.level;
    p.lvl.className = `lvl lvl-${l.level}`;
    p.tk.textContent = s.key === null && !filter.grouped && l.taskId ? `${l.taskId} › ` : '';
    p.msg.data = n || !multi ? msg : msg.slice(0, nl);
    p.more.hidden = !(multi || msg.length > 200);
    if (!p.more.hidden) {
      p.more.textContent = n ? '▴' : (multi ? `+${msg.split('\n').length - 1}` : '…');
      p.more.title = n ? 'Collapse' : 'Show the whole message';
      p.more.setAttribute('aria-expanded', String(!!n));
    }
    row.style.height = `${n ? ROW * n + EXP_PAD : ROW}px`;
    row._entry = l;
    row._open = !!n;
  }

  function fillPlaceholder(row) {
    const p = row._p;
    row.className = 'vlog-row';
    delete row.dataset.level;
    p.lt.textContent = ''; p.lvl.textContent = ''; p.tk.textContent = ''; p.msg.data = '…'; p.more.hidden = true;
    row.style.height = `${ROW}px`;
    row._entry = undefined;
    row._open = false;
  }

  function draw() {
    frame = 0;
    if (!alive) return;
    const total = totalHeight();
    const domH = Math.min(total, MAX_DOM);
    if (spacer._h !== domH) { spacer.style.height = `${domH}px`; spacer._h = domH; }
    if (!viewH) viewH = box.clientHeight || 400;
    if (stick) box.scrollTop = domH;
    const st = Math.min(box.scrollTop, Math.max(0, domH - viewH));
    const k = domH > viewH && total > domH ? (total - viewH) / (domH - viewH) : 1;
    const vTop = st * k;
    const lo = vTop - OVERSCAN * ROW;
    const hi = vTop + viewH + OVERSCAN * ROW;
    const seen = new Set();
    const want = [];            // line rows in view: [key, segment, line, top]
    let y = 0;
    segs.forEach((s, si) => {
      const sh = segHeight(s);
      if (y + sh < lo || y > hi) { y += sh; return; }
      if (s.header) {
        // a group's header sticks to the top of the view while its lines scroll under it
        const pos = Math.max(y, Math.min(vTop, y + sh - HEAD));
        const key = `h${si}`;
        const n = headFor(key);
        if (n._seg !== s || n._n !== segLines(s) || n._c !== s.collapsed || n._stale) {
          const toggle = h('button', { type: 'button', class: 'vlog-toggle', 'aria-expanded': String(!s.collapsed),
            onclick: () => { s.collapsed = !s.collapsed; stick = false; n._stale = true; schedule(); } }, s.collapsed ? '▸' : '▾');
          const c = segLines(s);
          replace(n, toggle, h('span', { class: 'gtitle' }, opts.groupTitle(s.key)), h('span', { class: 'muted' }, `${c} line${c === 1 ? '' : 's'}`));
          n.dataset.taskrun = s.key;
          n._seg = s; n._n = c; n._c = s.collapsed; n._stale = false;
        }
        n.style.transform = `translateY(${st + pos - vTop}px)`;
        seen.add(key);
        y += HEAD;
      }
      if (!s.collapsed) {
        const n = segLines(s);
        let i = lineAt(s, Math.max(0, lo - y));
        for (; i < n; i += 1) {
          const top = y + lineTop(s, i);
          if (top > hi) break;
          want.push([`${si}:${i}`, s, i, st + top - vTop]);
        }
      }
      y += sh;
    });
    for (const [key, n] of nodes) if (!seen.has(key)) { n.remove(); nodes.delete(key); }
    const keep = new Set(want.map((w) => w[0]));
    for (const [key, row] of rows) if (!keep.has(key)) { pool.push(row); rows.delete(key); }
    for (const [key, s, i, top] of want) {
      let row = rows.get(key);
      if (!row) { row = pool.pop() || newRow(); row.hidden = false; rows.set(key, row); row._entry = null; }
      row._s = s; row._i = i;
      const l = entryAt(s, i);
      if (!l) { if (row._entry !== undefined) fillPlaceholder(row); } else if (row._entry !== l || row._open !== s.exp.has(i)) fillLine(row, l, s, i);
      row.style.transform = `translateY(${top}px)`;
    }
    for (const row of pool) if (!row.hidden) { fillPlaceholder(row); row.hidden = true; row._p.msg.data = ''; }
    while (pool.length > 200) pool.pop().remove();
    stats.rowsInDom = rows.size;
    const any = segs.some((s) => segLines(s) > 0);
    empty.hidden = any;
    empty.textContent = any ? '' : opts.emptyText(filter);
  }

  box.addEventListener('scroll', () => {
    const domH = spacer._h || 0;
    stick = follow && box.scrollTop + box.clientHeight >= domH - ROW;
    schedule();
  }, { passive: true });
  const ro = new ResizeObserver(() => { viewH = box.clientHeight; schedule(); });
  ro.observe(box);

  return {
    element: box,
    load,
    push,
    stats,
    get filter() { return filter; },
    get lineCount() { return segs.reduce((a, s) => a + segLines(s), 0); },
    refreshTitles() { for (const n of nodes.values()) if (n._seg) n._stale = true; schedule(); },
    setFollow(on) { follow = on; stick = on; schedule(); },
    destroy() { alive = false; generation += 1; if (frame) cancelAnimationFrame(frame); ro.disconnect(); },
  };
}
