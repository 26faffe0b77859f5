// /ui/ and /ui/dashboard — executions over time by state, success ratio, durations of recent executions,
// recent failures, running and queued now, next scheduled runs. Charts are plain SVG. Counts come from
// GET /executions/search totals (size=1), so the page costs a fixed number of small requests whatever the
// store holds; it refreshes live (debounced) on /api/v1/ws execution events.
import { h, replace, stateBadge, stateSpan, humanDuration, timeEl, uiLinkExecution, uiLinkFlow, emptyState, errorBox, shortId } from '../util.js';
import { getJson, openSocket } from '../api.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The states drawn in the chart, bottom to top; everything else is "other" (running, created, paused…). */
export const CHART_STATES = ['SUCCESS', 'WARNING', 'FAILED', 'KILLED'];
const COLORS = { SUCCESS: 'var(--st-success)', WARNING: 'var(--st-warning)', FAILED: 'var(--st-failed)', KILLED: 'var(--st-killed)', OTHER: 'var(--st-running)' };
const RANGES = { 7: 'Last 7 days', 14: 'Last 14 days', 30: 'Last 30 days' };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

/** Local-midnight day starts: `days` buckets ending today, plus the end of today. */
export function dayBuckets(days, now = new Date()) {
  const end = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  const out = [];
  for (let i = days; i > 0; i--) {
    const from = new Date(end.getFullYear(), end.getMonth(), end.getDate() - i);
    const to = new Date(end.getFullYear(), end.getMonth(), end.getDate() - i + 1);
    out.push({ from, to });
  }
  return out;
}

const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Stacked bars, one per day: [{label, counts: {SUCCESS: n, …, OTHER: n}}]. */
export function stackedBars(days, { width = 640, height = 220 } = {}) {
  const pad = { l: 36, r: 8, t: 8, b: 24 };
  const max = Math.max(1, ...days.map((d) => Object.values(d.counts).reduce((a, b) => a + b, 0)));
  const iw = width - pad.l - pad.r, ih = height - pad.t - pad.b;
  const bw = iw / days.length;
  const y = (v) => pad.t + ih - (v / max) * ih;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Executions per day by state' });
  for (const t of [0, 0.5, 1]) {
    const v = Math.round(max * t);
    svg.appendChild(s('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
    svg.appendChild(s('text', { x: pad.l - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
  }
  days.forEach((d, i) => {
    let acc = 0;
    const x = pad.l + i * bw + bw * 0.15;
    const g = s('g', { class: 'bar', 'data-day': d.label });
    const total = Object.values(d.counts).reduce((a, b) => a + b, 0);
    g.appendChild(s('title', null, `${d.label}: ${total} execution${total === 1 ? '' : 's'}` +
      Object.entries(d.counts).filter(([, n]) => n).map(([k, n]) => `\n${k}: ${n}`).join('')));
    for (const k of [...CHART_STATES, 'OTHER']) {
      const n = d.counts[k] || 0;
      if (!n) continue;
      g.appendChild(s('rect', { x, width: bw * 0.7, y: y(acc + n), height: Math.max(0, y(acc) - y(acc + n)), fill: COLORS[k], 'data-state': k, 'data-count': n }));
      acc += n;
    }
    svg.appendChild(g);
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) {
      svg.appendChild(s('text', { x: pad.l + i * bw + bw / 2, y: height - 6, 'text-anchor': 'middle', class: 'axis' }, d.label));
    }
  });
  return svg;
}

/** Bars of durations (ms), oldest left, colored by state: [{ms, state, id}]. */
function durationBars(items, { width = 640, height = 160 } = {}) {
  const pad = { l: 48, r: 8, t: 8, b: 8 };
  const max = Math.max(1, ...items.map((d) => d.ms));
  const iw = width - pad.l - pad.r, ih = height - pad.t - pad.b;
  const bw = iw / Math.max(items.length, 1);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Durations of recent executions' });
  for (const t of [0, 1]) {
    const yy = pad.t + ih - t * ih;
    svg.appendChild(s('line', { x1: pad.l, x2: width - pad.r, y1: yy, y2: yy, class: 'grid' }));
    svg.appendChild(s('text', { x: pad.l - 4, y: yy + 4, 'text-anchor': 'end', class: 'axis' }, humanDuration(max * t)));
  }
  items.forEach((d, i) => {
    const bh = Math.max(1, (d.ms / max) * ih);
    svg.appendChild(s('rect', { x: pad.l + i * bw + bw * 0.1, width: Math.max(1, bw * 0.8), y: pad.t + ih - bh, height: bh, fill: COLORS[d.state] || COLORS.OTHER },
      s('title', null, `${d.id}: ${humanDuration(d.ms)} (${d.state})`)));
  });
  return svg;
}

function percentile(sorted, p) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN; }

const total = (query) => getJson('/executions/search', { ...query, size: 1 }).then((r) => (r && r.total) || 0);

function card(title, body, extra) {
  return h('section', { class: 'panel dash-card', 'aria-label': title }, h('div', { class: 'dash-card-head' }, h('h2', null, title), extra || null), body);
}

function executionList(list, empty) {
  if (!list.length) return h('p', { class: 'muted' }, empty);
  return h('ul', { class: 'dash-list' }, list.map((e) => {
    const span = stateSpan(e.state);
    return h('li', null, stateBadge(e.state && e.state.current),
      h('a', { href: uiLinkExecution(e), title: e.id }, `${e.namespace}.${e.flowId}`),
      h('span', { class: 'muted mono' }, shortId(e.id)),
      h('span', { class: 'muted' }, timeEl(e.state && e.state.startDate)),
      Number.isNaN(span.ms) ? null : h('span', { class: 'muted' }, humanDuration(span.ms)));
  }));
}

export function render(root, _params, query) {
  document.title = 'Dashboard · Falconet';
  const days = RANGES[query.days] ? +query.days : 7;
  const live = h('span', { class: 'live', 'aria-live': 'polite' }, 'connecting');
  const rangeSel = h('select', { id: 'dash-range', onchange: () => { history.replaceState(null, '', `/ui/dashboard?days=${rangeSel.value}`); rangeDays = +rangeSel.value; loadCounts(); } },
    Object.entries(RANGES).map(([v, l]) => h('option', { value: v, selected: +v === days }, l)));
  let rangeDays = days;
  const kpis = h('div', { class: 'dash-kpis' });
  const chart = h('div', { class: 'dash-chart', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading…'));
  const legend = h('ul', { class: 'dash-legend' }, [...CHART_STATES, 'OTHER'].map((k) => h('li', null,
    h('span', { class: 'swatch', style: { background: COLORS[k] } }), k === 'OTHER' ? 'other (running, paused…)' : k)));
  const durations = h('div', { 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading…'));
  const failures = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const now = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const next = h('div', null, h('p', { class: 'loading' }, 'Loading…'));

  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Dashboard'), h('span', { class: 'spacer' }), live,
      h('label', { for: 'dash-range', class: 'sr-only' }, 'Period'), rangeSel),
    kpis,
    h('div', { class: 'dash-grid' },
      card('Executions over time', h('div', null, chart, legend)),
      card('Running and queued now', now),
      card('Durations of the last 100 finished executions', durations),
      card('Recent failures', failures, h('a', { href: '/ui/executions?state=FAILED' }, 'All failed')),
      card('Next scheduled runs', next, h('a', { href: '/ui/admin/triggers' }, 'All triggers'))));

  let alive = true;
  let countSeq = 0;

  async function loadCounts() {
    const my = ++countSeq;
    const buckets = dayBuckets(rangeDays);
    try {
      const rows = await Promise.all(buckets.map(async (b) => {
        const q = { startDate: b.from.toISOString(), endDate: b.to.toISOString() };
        const [all, ...byState] = await Promise.all([total(q), ...CHART_STATES.map((st) => total({ ...q, state: st }))]);
        const counts = {};
        CHART_STATES.forEach((st, i) => { counts[st] = byState[i]; });
        counts.OTHER = Math.max(0, all - byState.reduce((a, c) => a + c, 0));
        return { label: dayFmt.format(b.from), counts, all };
      }));
      if (!alive || my !== countSeq) return;
      const sum = (k) => rows.reduce((a, r) => a + (r.counts[k] || 0), 0);
      const all = rows.reduce((a, r) => a + r.all, 0);
      const finished = CHART_STATES.reduce((a, k) => a + sum(k), 0);
      const ratio = finished ? sum('SUCCESS') / finished : NaN;
      replace(kpis,
        kpi('Executions', String(all), RANGES[rangeDays].toLowerCase()),
        kpi('Success ratio', Number.isNaN(ratio) ? '—' : `${(ratio * 100).toFixed(1)} %`, `${sum('SUCCESS')} of ${finished} finished`, 'dash-ratio'),
        kpi('Failed', String(sum('FAILED')), RANGES[rangeDays].toLowerCase()),
        kpi('Warnings', String(sum('WARNING')), RANGES[rangeDays].toLowerCase()));
      replace(chart, all ? stackedBars(rows) : emptyState('No executions in this period.'));
      chart.setAttribute('aria-busy', 'false');
    } catch (e) {
      if (alive && my === countSeq) replace(chart, errorBox(e, 'Could not count executions'));
    }
  }

  function kpi(label, value, detail, cls) {
    return h('div', { class: `panel dash-kpi ${cls || ''}`.trim() }, h('div', { class: 'muted' }, label), h('div', { class: 'dash-kpi-value' }, value), h('div', { class: 'muted small' }, detail));
  }

  async function loadLists() {
    try {
      const [recent, failed, running, queued, triggers] = await Promise.all([
        getJson('/executions/search', { size: 100, sort: 'state.startDate:desc', state: ['SUCCESS', 'WARNING', 'FAILED', 'KILLED'] }),
        getJson('/executions/search', { size: 8, sort: 'state.startDate:desc', state: 'FAILED' }),
        getJson('/executions/search', { size: 10, sort: 'state.startDate:desc', state: ['RUNNING', 'PAUSED', 'KILLING', 'RESTARTED'] }),
        getJson('/executions/search', { size: 10, sort: 'state.startDate:asc', state: ['CREATED', 'QUEUED'] }),
        getJson('/triggers/search', { size: 100, sort: 'nextExecutionDate:asc' }).catch(() => null),
      ]);
      if (!alive) return;
      const items = ((recent && recent.results) || []).map((e) => ({ id: e.id, state: e.state.current, ms: stateSpan(e.state).ms })).filter((d) => !Number.isNaN(d.ms)).reverse();
      const sorted = items.map((d) => d.ms).sort((a, b) => a - b);
      replace(durations, items.length
        ? h('div', null, durationBars(items), h('p', { class: 'muted small dash-duration-stats' },
          `median ${humanDuration(percentile(sorted, 0.5))} · p95 ${humanDuration(percentile(sorted, 0.95))} · max ${humanDuration(sorted[sorted.length - 1])}`))
        : h('p', { class: 'muted' }, 'No finished execution yet.'));
      durations.setAttribute('aria-busy', 'false');
      replace(failures, executionList((failed && failed.results) || [], 'No failed execution. 🎉'));
      replace(now,
        h('h3', null, `Running (${(running && running.total) || 0})`), executionList((running && running.results) || [], 'Nothing running.'),
        h('h3', null, `Queued (${(queued && queued.total) || 0})`), executionList((queued && queued.results) || [], 'Nothing queued.'));
      const upcoming = ((triggers && triggers.results) || [])
        .map((t) => t.triggerContext || {})
        .filter((c) => c.nextExecutionDate && !c.disabled)
        .sort((a, b) => Date.parse(a.nextExecutionDate) - Date.parse(b.nextExecutionDate))
        .slice(0, 8);
      replace(next, upcoming.length
        ? h('ul', { class: 'dash-list' }, upcoming.map((c) => h('li', null,
          h('a', { href: uiLinkFlow(c.namespace, c.flowId, 'triggers') }, `${c.namespace}.${c.flowId}`),
          h('span', { class: 'mono muted' }, c.triggerId), timeEl(c.nextExecutionDate))))
        : h('p', { class: 'muted' }, 'No scheduled trigger.'));
    } catch (e) {
      if (alive) replace(now, errorBox(e, 'Could not load executions'));
    }
  }

  loadCounts();
  loadLists();

  // live: any execution change refreshes (at most every 2 s)
  let pending = null;
  let lastRun = 0;
  const refresh = () => {
    if (pending) return;
    const wait = Math.max(0, 2000 - (Date.now() - lastRun));
    pending = setTimeout(() => { pending = null; lastRun = Date.now(); if (alive) { loadCounts(); loadLists(); } }, wait);
  };
  let opened = false;
  const socket = openSocket('/ws', {
    onMessage: (msg) => { if (msg && msg.type === 'execution') refresh(); },
    onOpen: () => { if (opened) refresh(); opened = true; },
    onStatus: (st) => { live.dataset.status = st; live.textContent = st === 'live' ? 'live' : st; },
  });
  return () => { alive = false; clearTimeout(pending); socket.close(); };
}
