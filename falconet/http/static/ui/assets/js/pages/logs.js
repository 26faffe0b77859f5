// /ui/logs — every log line of every execution (GET /api/v1/logs/search): namespace, flow, minimum level,
// time range and text filters, newest page first (lines oldest → newest within a page), and live: new lines
// are appended every 2 s while "Live" is on.
import { h, replace, debounce, formatTime, formatDate, uiLinkExecution, emptyState, errorBox } from '../util.js';
import { getJson, qs } from '../api.js';
import { pager } from '../components.js';
import { navigate } from '../main.js';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
const SIZE = 100;
const LIVE_MS = 2000;
const RANGES = { '': 'Any time', PT15M: 'Last 15 minutes', PT1H: 'Last hour', PT24H: 'Last 24 hours', P7D: 'Last 7 days', custom: 'Between…' };

function isoFromLocal(v) { if (!v) return ''; const d = new Date(v); return Number.isNaN(d.getTime()) ? '' : d.toISOString(); }

const lineKey = (l) => `${l.timestamp}|${l.executionId}|${l.taskRunId || ''}|${l.level}|${l.message}`;

function lineEl(l) {
  const link = l.executionId ? h('a', { href: uiLinkExecution({ namespace: l.namespace, flowId: l.flowId, id: l.executionId }) + '/logs', class: 'mono' }, `${l.namespace}.${l.flowId}`) : h('span', { class: 'mono' }, `${l.namespace}.${l.flowId}`);
  return h('div', { class: `glog-row level-${String(l.level || '').toLowerCase()}`, role: 'listitem', dataset: { level: l.level } },
    h('time', { datetime: l.timestamp, title: formatDate(l.timestamp), class: 'mono muted' }, formatTime(l.timestamp)),
    h('span', { class: 'glog-level' }, l.level),
    link,
    l.taskId ? h('span', { class: 'mono muted' }, l.taskId) : (l.triggerId ? h('span', { class: 'mono muted' }, `trigger ${l.triggerId}`) : null),
    h('span', { class: 'glog-msg' }, l.message));
}

export function render(root, _params, query) {
  document.title = 'Logs · Falconet';
  const f = {
    q: query.q || '', namespace: query.namespace || '', flowId: query.flowId || '',
    minLevel: LEVELS.includes(query.minLevel) ? query.minLevel : 'INFO',
    range: RANGES[query.timeRange] ? query.timeRange : (query.startDate || query.endDate ? 'custom' : ''),
    startDate: query.startDate || '', endDate: query.endDate || '', page: +query.page || 0,
  };
  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
  const q = h('input', { id: 'lg-q', type: 'search', value: f.q, placeholder: 'Text in the message', autocomplete: 'off' });
  const ns = h('input', { id: 'lg-ns', type: 'text', value: f.namespace, placeholder: 'namespace prefix', autocomplete: 'off' });
  const flow = h('input', { id: 'lg-flow', type: 'text', value: f.flowId, placeholder: 'flow id', autocomplete: 'off' });
  const level = h('select', { id: 'lg-level' }, LEVELS.map((l) => h('option', { value: l, selected: l === f.minLevel }, l)));
  const range = h('select', { id: 'lg-range' }, Object.entries(RANGES).map(([v, l]) => h('option', { value: v, selected: v === f.range }, l)));
  const start = h('input', { id: 'lg-start', type: 'datetime-local' });
  const end = h('input', { id: 'lg-end', type: 'datetime-local' });
  const custom = h('div', { class: 'filters-inline', hidden: f.range !== 'custom' }, field('lg-start', 'From', start), field('lg-end', 'To', end));
  const live = h('input', { id: 'lg-live', type: 'checkbox', checked: query.live !== 'false' });
  const status = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const list = h('div', { class: 'glog-list', role: 'list', 'aria-label': 'Log lines' });
  const nav = h('div');
  const results = h('div', { 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading logs…'));

  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Logs'), h('span', { class: 'spacer' }),
      h('label', { class: 'check', for: 'lg-live' }, live, ' Live'), status),
    h('div', { class: 'filters', role: 'search' },
      field('lg-q', 'Search', q), field('lg-ns', 'Namespace', ns), field('lg-flow', 'Flow', flow),
      field('lg-level', 'Minimum level', level), field('lg-range', 'Time range', range), custom),
    results);

  let alive = true;
  let seq = 0;
  let total = 0;
  let lastPage = 1;
  let shownPage = 1;
  let newest = null; // timestamp of the newest line shown (live appends after it)
  let seen = new Set(); // keys of the lines at `newest` (to skip them when polling from that instant)
  let timer = null;

  function queryParams(extra = {}) {
    const p = { q: f.q, namespace: f.namespace, flowId: f.flowId, minLevel: f.minLevel };
    if (f.range === 'custom') { p.startDate = isoFromLocal(start.value); p.endDate = isoFromLocal(end.value); } else if (f.range) p.timeRange = f.range;
    return { ...p, ...extra };
  }

  function syncUrl() {
    const p = { q: f.q, namespace: f.namespace, flowId: f.flowId, minLevel: f.minLevel === 'INFO' ? '' : f.minLevel };
    if (f.range === 'custom') { p.startDate = isoFromLocal(start.value); p.endDate = isoFromLocal(end.value); } else if (f.range) p.timeRange = f.range;
    if (!live.checked) p.live = 'false';
    navigate(`/ui/logs${qs(p)}`, { replace: true, silent: true });
  }

  function remember(lines) {
    for (const l of lines) {
      if (newest === null || l.timestamp > newest) { newest = l.timestamp; seen = new Set(); }
      if (l.timestamp === newest) seen.add(lineKey(l));
    }
  }

  async function load(page) {
    const my = ++seq;
    syncUrl();
    results.setAttribute('aria-busy', 'true');
    try {
      const head = await getJson('/logs/search', queryParams({ size: 1, page: 1 }));
      total = (head && head.total) || 0;
      lastPage = Math.max(1, Math.ceil(total / SIZE));
      shownPage = page ? Math.min(page, lastPage) : lastPage;
      const data = total ? await getJson('/logs/search', queryParams({ size: SIZE, page: shownPage })) : { results: [] };
      if (!alive || my !== seq) return;
      const lines = (data && data.results) || [];
      newest = null; seen = new Set();
      remember(lines);
      results.setAttribute('aria-busy', 'false');
      if (!lines.length) { replace(results, emptyState('No log line matches these filters.', 'Widen the time range or lower the minimum level.')); return; }
      replace(list, lines.map(lineEl));
      replace(nav, pager(shownPage, SIZE, total, (p) => load(p)));
      replace(results, list, nav);
      if (shownPage === lastPage) list.scrollTop = list.scrollHeight;
    } catch (e) {
      if (alive && my === seq) replace(results, errorBox(e, 'Could not search the logs'));
    }
  }

  async function poll() {
    if (!alive || !live.checked || shownPage !== lastPage || f.range === 'custom') return;
    const my = seq;
    try {
      const extra = newest ? { startDate: newest, timeRange: '' } : {};
      const data = await getJson('/logs/search', queryParams({ ...extra, size: 500, page: 1 }));
      if (!alive || my !== seq) return;
      const fresh = ((data && data.results) || []).filter((l) => !(l.timestamp === newest && seen.has(lineKey(l))) && !(newest && l.timestamp < newest));
      if (!fresh.length) return;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      if (!list.isConnected) { load(); return; }
      fresh.forEach((l) => list.appendChild(lineEl(l)));
      remember(fresh);
      total += fresh.length;
      replace(nav, pager(shownPage, SIZE, total, (p) => load(p)));
      if (atBottom) list.scrollTop = list.scrollHeight;
      status.textContent = `${fresh.length} new line${fresh.length === 1 ? '' : 's'}`;
    } catch (e) {
      status.textContent = `live paused: ${e.message}`;
    }
  }

  function setLive() {
    clearInterval(timer);
    timer = live.checked ? setInterval(poll, LIVE_MS) : null;
    status.textContent = live.checked ? '' : 'live off';
    syncUrl();
  }

  const onFilter = debounce(() => {
    f.q = q.value.trim(); f.namespace = ns.value.trim(); f.flowId = flow.value.trim();
    load();
  }, 250);
  for (const el of [q, ns, flow]) el.addEventListener('input', onFilter);
  level.addEventListener('change', () => { f.minLevel = level.value; load(); });
  range.addEventListener('change', () => { f.range = range.value; custom.hidden = f.range !== 'custom'; load(); });
  start.addEventListener('change', () => load());
  end.addEventListener('change', () => load());
  live.addEventListener('change', setLive);
  if (f.range === 'custom') {
    const local = (iso) => { const t = Date.parse(iso); if (Number.isNaN(t)) return ''; const d = new Date(t); const p = (n) => String(n).padStart(2, '0'); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; };
    start.value = local(f.startDate); end.value = local(f.endDate);
  }
  load(f.page || 0);
  setLive();
  return () => { alive = false; clearInterval(timer); onFilter.cancel(); };
}
