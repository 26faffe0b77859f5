// /ui/executions — executions list with filters (namespace, flow, state, labels, date range),
// paging, and rows that change live through the /api/v1/ws websocket.
import { h, replace, STATES, stateBadge, stateSpan, humanDuration, timeEl, labelChips, labelsToList, uiLinkExecution, uiLinkFlow, emptyState, errorBox, isTerminated, shortId } from '../util.js';
import { getJson, openSocket, qs } from '../api.js';
import { pager } from '../components.js';
import { bulkBar } from '../bulk.js';
import { navigate } from '../main.js';

/** Sortable columns: the search's sort fields. */
const SORTS = [{ field: 'id', label: 'Id' }, { field: 'flowId', label: 'Flow' }, { field: 'state.current', label: 'State' },
  { field: 'state.startDate', label: 'Start' }, { field: 'state.endDate', label: 'End' }];
const DEFAULT_SORT = 'state.startDate:desc';

function isoFromLocal(v) { if (!v) return ''; const d = new Date(v); return Number.isNaN(d.getTime()) ? '' : d.toISOString(); }
function localFromIso(v) {
  const t = Date.parse(v); if (Number.isNaN(t)) return '';
  const d = new Date(t); const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function render(root, _params, _query, all) {
  document.title = 'Executions · Falconet';
  const box = h('div');
  replace(root, h('div', { class: 'page-head' }, h('h1', null, 'Executions')), box);
  return renderExecutionsList(box, { initial: all, syncUrl: true });
}

/**
 * The executions table. `fixed` = filters that cannot be changed (a flow's Executions tab);
 * `initial` = URLSearchParams to start from; `syncUrl` keeps /ui/executions?… in step with the filters.
 * Returns a cleanup function.
 */
export function renderExecutionsList(container, { fixed = {}, initial = new URLSearchParams(), syncUrl = false } = {}) {
  const f = {
    namespace: fixed.namespace || initial.get('namespace') || '',
    flowId: fixed.flowId || initial.get('flowId') || '',
    states: initial.getAll('state').filter((s) => STATES.includes(s)),
    labels: initial.getAll('labels').join(', '),
    startDate: initial.get('startDate') || '',
    endDate: initial.get('endDate') || '',
    page: Math.max(1, +(initial.get('page') || 1)),
    size: [10, 25, 50, 100].includes(+initial.get('size')) ? +initial.get('size') : 25,
    sort: SORTS.some((c) => (initial.get('sort') || '').startsWith(`${c.field}:`)) ? initial.get('sort') : DEFAULT_SORT,
  };
  let alive = true;
  let socket = null;
  let rows = new Map(); // execution id → {tr, execution}
  let total = 0;
  let pollTimer = null;

  const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
  const ns = h('input', { id: 'ex-ns', type: 'text', value: f.namespace, disabled: !!fixed.namespace, placeholder: 'namespace prefix', autocomplete: 'off', list: 'ex-ns-list' });
  const nsList = h('datalist', { id: 'ex-ns-list' });
  const flowIn = h('input', { id: 'ex-flow', type: 'text', value: f.flowId, disabled: !!fixed.flowId, placeholder: 'flow id', autocomplete: 'off' });
  const stateBoxes = STATES.map((s) => h('label', { class: 'check', style: { fontWeight: 'normal', display: 'flex', gap: '6px', alignItems: 'center' } },
    h('input', { type: 'checkbox', value: s, checked: f.states.includes(s) }), stateBadge(s)));
  const stateSummary = h('summary', { class: 'button' }, 'States');
  const states = h('details', { class: 'state-filter', style: { position: 'relative' } }, stateSummary,
    h('fieldset', { style: { position: 'absolute', zIndex: 5, background: 'var(--panel)', border: '1px solid var(--border)', borderRadius: '8px', padding: '8px', display: 'grid', gap: '4px', minWidth: '180px' } },
      h('legend', { class: 'sr-only' }, 'States'), stateBoxes));
  states.addEventListener('keydown', (e) => { if (e.key === 'Escape' && states.open) { e.stopPropagation(); states.open = false; stateSummary.focus(); } });
  const closeStates = (e) => { if (states.open && !states.contains(e.target)) states.open = false; };
  document.addEventListener('click', closeStates);
  const labelsIn = h('input', { id: 'ex-labels', type: 'text', value: f.labels, placeholder: 'key:value, key2:value2', autocomplete: 'off' });
  const start = h('input', { id: 'ex-start', type: 'datetime-local', value: localFromIso(f.startDate) });
  const end = h('input', { id: 'ex-end', type: 'datetime-local', value: localFromIso(f.endDate) });
  const size = h('select', { id: 'ex-size' }, [10, 25, 50, 100].map((n) => h('option', { value: String(n), selected: n === f.size }, String(n))));
  const liveEl = h('span', { class: 'live', dataset: { status: 'connecting' } }, 'connecting');
  const results = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading executions…'));
  // on a phone the fields fold behind this button, so the results stay in view
  const foldBtn = h('button', { type: 'button', class: 'filters-fold', 'aria-expanded': 'false',
    onclick: () => { const open = !filters.classList.contains('open'); filters.classList.toggle('open', open); foldBtn.setAttribute('aria-expanded', String(open)); } }, 'Filters');
  const filters = h('form', { class: 'filters foldable', role: 'search', onsubmit: (e) => { e.preventDefault(); apply(); } },
    foldBtn,
    fixed.namespace ? null : field('ex-ns', 'Namespace', ns), nsList,
    fixed.flowId ? null : field('ex-flow', 'Flow', flowIn),
    h('div', { class: 'field' }, h('span', { class: 'flabel' }, 'State'), states),
    field('ex-labels', 'Labels', labelsIn),
    field('ex-start', 'From', start), field('ex-end', 'To', end),
    field('ex-size', 'Per page', size),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
    h('button', { type: 'button', onclick: () => { ns.value = fixed.namespace || ''; flowIn.value = fixed.flowId || ''; labelsIn.value = ''; start.value = ''; end.value = ''; stateBoxes.forEach((l) => { l.querySelector('input').checked = false; }); apply(); } }, 'Reset'),
    liveEl);
  [ns, flowIn, start, end, size].forEach((el) => el.addEventListener('change', () => apply()));
  stateBoxes.forEach((l) => l.querySelector('input').addEventListener('change', () => apply()));
  replace(container, filters, results);
  getJson('/flows/distinct-namespaces').then((list) => {
    if (alive && Array.isArray(list)) list.forEach((n) => nsList.appendChild(h('option', { value: n })));
  }).catch(() => { /* suggestions only */ });

  function labelList() { return labelsIn.value.split(/[,\n]/).map((s) => s.trim()).filter((s) => s.includes(':')); }

  function apply(keepPage = false) {
    f.namespace = fixed.namespace || ns.value.trim();
    f.flowId = fixed.flowId || flowIn.value.trim();
    f.states = stateBoxes.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value);
    stateSummary.textContent = f.states.length ? `States (${f.states.length})` : 'States';
    const active = [f.states.length, labelList().length, f.startDate, f.endDate, !fixed.namespace && f.namespace, !fixed.flowId && f.flowId].filter(Boolean).length;
    foldBtn.textContent = active ? `Filters (${active})` : 'Filters';
    f.labels = labelList().join(', ');
    f.startDate = isoFromLocal(start.value);
    f.endDate = isoFromLocal(end.value);
    f.size = +size.value;
    if (!keepPage) f.page = 1;
    clearSelection();
    load();
    connect();
  }

  function queryParams() {
    return { page: f.page, size: f.size, sort: f.sort, ...filterParams() };
  }

  function filterParams() {
    return { namespace: f.namespace, flowId: f.flowId, state: f.states, labels: labelList(), startDate: f.startDate, endDate: f.endDate };
  }

  const picked = new Set(); // selected execution ids: kept across live row updates and reloads
  const bulk = bulkBar({
    selected: () => [...picked],
    filter: () => ({ query: filterParams(), total }),
    onDone: () => { clearSelection(); load(); },
  });
  const pick = (id, on) => { if (on) picked.add(id); else picked.delete(id); };
  // the boxes shown are unchecked at once, not when the reload answers: until then a shown box would claim a
  // selection that is gone (and checking it again would change nothing)
  function clearSelection() {
    picked.clear();
    rows.forEach((r) => { r.tr.querySelector('input.sel').checked = false; });
    bulk.reset();
  }

  function sortHeader(field, label, cls) {
    const [cur, dir] = f.sort.split(':');
    const on = cur === field;
    return h('th', { scope: 'col', class: cls || '', 'aria-sort': on ? (dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort-btn', onclick: () => { f.sort = `${field}:${on && dir === 'desc' ? 'asc' : 'desc'}`; f.page = 1; load(); } },
        label, h('span', { 'aria-hidden': 'true' }, on ? (dir === 'asc' ? ' ▲' : ' ▼') : '')));
  }

  function row(e) {
    const span = stateSpan(e.state);
    return h('tr', { dataset: { executionId: e.id } },
      h('td', { class: 'sel-cell' }, h('input', { type: 'checkbox', class: 'sel', checked: picked.has(e.id), 'aria-label': `Select execution ${e.id}`, onchange: (ev) => { pick(e.id, ev.target.checked); bulk.update(); } })),
      h('td', null, h('a', { href: uiLinkExecution(e), class: 'mono', title: e.id, 'aria-label': `Execution ${e.id}` }, shortId(e.id))),
      h('td', null, h('a', { href: uiLinkFlow(e.namespace, e.flowId) }, e.flowId), h('div', { class: 'muted', style: { fontSize: '12px' } }, e.namespace)),
      h('td', { class: 'nowrap' }, stateBadge(e.state && e.state.current)),
      h('td', { class: 'nowrap hide-sm' }, timeEl(e.state && (e.state.startDate || (e.state.histories && e.state.histories[0] && e.state.histories[0].date)))),
      h('td', { class: 'nowrap duration', dataset: { running: span.running ? '1' : '' } }, humanDuration(span.ms)),
      h('td', { class: 'hide-sm' }, labelChips(e.labels)));
  }

  function matches(e) {
    if (f.namespace && !(e.namespace === f.namespace || e.namespace.startsWith(`${f.namespace}.`) || e.namespace.startsWith(f.namespace))) return false;
    if (f.flowId && e.flowId !== f.flowId) return false;
    if (f.states.length && !f.states.includes(e.state && e.state.current)) return false;
    const ls = labelsToList(e.labels).map((l) => `${l.key}:${l.value}`);
    if (!labelList().every((l) => ls.includes(l))) return false;
    const st = Date.parse(e.state && e.state.startDate);
    if (f.startDate && st < Date.parse(f.startDate)) return false;
    if (f.endDate && st > Date.parse(f.endDate)) return false;
    return true;
  }

  let tbody = null;
  let seq = 0;
  async function load() {
    const my = ++seq;
    if (syncUrl) {
      const p = { namespace: f.namespace, flowId: f.flowId, state: f.states, labels: labelList(), startDate: f.startDate, endDate: f.endDate, page: f.page > 1 ? f.page : '', size: f.size !== 25 ? f.size : '', sort: f.sort !== DEFAULT_SORT ? f.sort : '' };
      navigate(`/ui/executions${qs(p)}`, { replace: true, silent: true });
    }
    try {
      const data = await getJson('/executions/search', queryParams());
      if (!alive || my !== seq) return;
      total = data.total || 0;
      rows = new Map();
      const list = data.results || [];
      if (!list.length) {
        tbody = null;
        const filtered = f.states.length || labelList().length || f.startDate || f.endDate || (!fixed.namespace && f.namespace) || (!fixed.flowId && f.flowId);
        replace(results, filtered ? emptyState('No execution matches these filters.', 'New executions appear here live.')
          : emptyState('No executions yet.', fixed.flowId ? 'Use Execute to start this flow; it appears here live.' : 'Open a flow and click Execute; executions appear here live.', fixed.flowId ? null : h('a', { href: '/ui/flows' }, 'Go to flows')));
        return;
      }
      tbody = h('tbody');
      list.forEach((e) => { const tr = row(e); rows.set(e.id, { tr, execution: e }); tbody.appendChild(tr); });
      drawTable();
    } catch (e) {
      if (alive && my === seq) replace(results, errorBox(e, 'Could not load executions'));
    }
  }

  function drawTable() {
    const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select every execution of this page', onchange: () => {
      rows.forEach((r) => { r.tr.querySelector('input.sel').checked = selectAll.checked; pick(r.execution.id, selectAll.checked); });
      bulk.update();
    } });
    replace(results, bulk.element,
      h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', { class: 'sel-cell' }, selectAll), sortHeader('id', 'Id'), sortHeader('flowId', 'Flow'), sortHeader('state.current', 'State'),
          sortHeader('state.startDate', 'Start', 'hide-sm'), h('th', null, 'Duration'), h('th', { class: 'hide-sm' }, 'Labels'))),
        tbody)),
      pager(f.page, f.size, total, (p) => { f.page = p; load(); }));
    bulk.update();
  }

  function onExecution(e) {
    if (!e || !e.id) return;
    const cur = rows.get(e.id);
    if (cur) {
      const tr = row(e);
      cur.tr.replaceWith(tr);
      rows.set(e.id, { tr, execution: e });
      return;
    }
    if (f.page !== 1 || !matches(e)) return;
    if (!tbody) { tbody = h('tbody'); }
    const tr = row(e);
    tbody.insertBefore(tr, tbody.firstChild);
    rows.set(e.id, { tr, execution: e });
    total += 1;
    while (tbody.children.length > f.size) {
      const last = tbody.lastChild;
      rows.delete(last.dataset.executionId);
      last.remove();
    }
    drawTable();
  }

  let socketPath = null;
  function connect() {
    const path = `/ws${qs({ namespace: f.namespace, flowId: f.flowId })}`;
    if (socket && path === socketPath) return; // the server filters on namespace and flow only
    if (socket) socket.close();
    clearInterval(pollTimer);
    pollTimer = null;
    socketPath = path;
    socket = openSocket(path, {
      onMessage: (msg) => { if (msg && msg.type === 'execution') onExecution(msg.execution); },
      onOpen: () => { clearInterval(pollTimer); pollTimer = null; },
      onStatus: (s) => {
        liveEl.dataset.status = s;
        liveEl.textContent = s === 'live' ? 'live' : s === 'unavailable' ? 'live updates unavailable — refreshing every 5 s' : s === 'offline' ? 'offline — reconnects when the network is back' : s;
        if ((s === 'unavailable' || s === 'failed') && !pollTimer) pollTimer = setInterval(() => { if (alive) load(); }, 5000);
      },
    });
  }

  // running rows: tick their duration
  const ticker = setInterval(() => {
    for (const { tr, execution } of rows.values()) {
      if (isTerminated(execution.state && execution.state.current)) continue;
      const td = tr.querySelector('td.duration');
      if (td && td.dataset.running) td.textContent = humanDuration(stateSpan(execution.state).ms);
    }
  }, 1000);

  apply(true);
  return () => { alive = false; document.removeEventListener('click', closeStates); clearInterval(ticker); clearInterval(pollTimer); if (socket) socket.close(); };
}
