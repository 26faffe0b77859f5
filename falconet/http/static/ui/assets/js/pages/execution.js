// /ui/executions/{namespace}/{flowId}/{id}[/{tab}] — one execution, live through
// /api/v1/executions/{id}/ws: overview, Gantt, Logs, Outputs, Metrics and the lifecycle actions.
import {
  h, replace, stateBadge, stateSpan, humanDuration, timeEl, formatTime, formatDate, labelChips, isTerminated, isKestraUri,
  prettyValue, uiLinkFlow, emptyState, errorBox, browserTimeZone,
} from '../util.js';
import { api, getJson, openSocket, enc, API, ApiError } from '../api.js';
import { tabs, toast, openDialog, confirmDialog } from '../components.js';
import { createInputsForm } from '../inputs-form.js';
import { findTask, renderTopology, paintTopology } from '../topology.js';
import { navigate } from '../main.js';
import { executionPageUrl } from '../execute.js';
import { createLogView } from '../logview.js';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
const TERMINAL_TARGETS = ['SUCCESS', 'WARNING', 'FAILED', 'KILLED', 'CANCELLED'];
const KILLABLE = new Set(['CREATED', 'QUEUED', 'RUNNING', 'PAUSED', 'RESTARTED', 'RETRYING']);
const RESTARTABLE = new Set(['FAILED', 'WARNING', 'KILLED', 'CANCELLED', 'PAUSED']);

const execLink = (ns, flowId, id) => `/ui/executions/${enc(ns)}/${enc(flowId)}/${enc(id)}`;
const trLabel = (tr) => `${tr.taskId}${tr.value !== undefined && tr.value !== null ? ` [${tr.value}]` : ''}`;
const fileUrl = (id, path) => `${API}/executions/${enc(id)}/file?path=${enc(path)}`;

export function render(root, params) {
  const { id } = params;
  let execution = null;
  let flowDef = null; // the flow at the execution's revision (task types, Pause onResume)
  let socket = null;
  let pollTimer = null;
  let alive = true;
  const expanded = new Set(); // Gantt rows opened by the user
  document.title = `Execution ${id} · Falconet`;

  //// header
  const badge = h('span');
  const liveEl = h('span', { class: 'live', dataset: { status: 'connecting' }, 'aria-live': 'polite' }, 'connecting');
  const durationEl = h('span', { class: 'mono' });
  const btn = (label, onclick, cls = '') => h('button', { type: 'button', class: cls, onclick, disabled: true }, label);
  const actions = {
    kill: btn('Kill', () => kill(), 'danger'),
    restart: btn('Restart', () => restart()),
    replay: btn('Replay', () => replay()),
    resume: btn('Resume', () => resume(), 'primary'),
    status: btn('Change status', () => changeStatus()),
  };
  const head = h('div', null,
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/executions' }, 'Executions'), ' / ',
      h('a', { href: `/ui/executions?namespace=${enc(params.namespace)}` }, params.namespace), ' / ',
      h('a', { href: uiLinkFlow(params.namespace, params.flowId) }, params.flowId)),
    h('div', { class: 'page-head' },
      h('h1', { class: 'mono' }, id), badge, durationEl, liveEl, h('span', { class: 'spacer' }),
      h('div', { class: 'toolbar', style: { margin: 0 }, role: 'toolbar', 'aria-label': 'Execution actions' }, Object.values(actions))));

  const tabItems = [{ id: 'overview', label: 'Overview' }, { id: 'gantt', label: 'Gantt' }, { id: 'topology', label: 'Topology' }, { id: 'logs', label: 'Logs' },
    { id: 'outputs', label: 'Outputs' }, { id: 'metrics', label: 'Metrics' }];
  const tabsCtl = tabs(tabItems, params.tab || 'overview', (tab, user) => {
    if (user) navigate(`${execLink(params.namespace, params.flowId, id)}${tab === 'overview' ? '' : '/' + tab}`, { replace: true, silent: true });
    drawTab(true);
  }, { label: 'Execution sections' });

  replace(root, head, h('p', { class: 'loading' }, 'Loading execution…'));

  //// state updates

  let drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; if (alive) { drawHead(); drawTab(false); } });
  }

  function setExecution(e) {
    if (!e || e.id !== id) return;
    const wasTerminal = execution && isTerminated(execution.state.current);
    execution = e;
    if (!wasTerminal && isTerminated(e.state.current) && tabsCtl.active === 'metrics') metricsLoaded = false;
    scheduleDraw();
  }

  /** A task-run delta: replace that task run in the current document (or add it). */
  function applyTaskRun(executionId, tr) {
    if (!execution || !tr || (executionId && executionId !== id)) return;
    const list = [...(execution.taskRunList || [])];
    const i = list.findIndex((t) => t.id === tr.id);
    if (i >= 0) list[i] = tr; else list.push(tr);
    execution = { ...execution, taskRunList: list };
    scheduleDraw();
  }

  function drawHead() {
    if (!execution) return;
    const s = execution.state.current;
    replace(badge, stateBadge(s, 'big'));
    document.title = `${s} · ${execution.flowId} · Falconet`;
    const span = stateSpan(execution.state);
    durationEl.textContent = humanDuration(span.ms);
    durationEl.title = 'Duration';
    actions.kill.disabled = !KILLABLE.has(s);
    actions.restart.disabled = !RESTARTABLE.has(s);
    actions.replay.disabled = !isTerminated(s);
    actions.resume.disabled = s !== 'PAUSED';
    actions.status.disabled = !isTerminated(s);
    actions.kill.title = actions.kill.disabled ? `Not possible in state ${s}` : 'Kill this execution';
    actions.resume.title = actions.resume.disabled ? 'Only a PAUSED execution can be resumed' : 'Resume this paused execution';
  }

  function drawTab(changed) {
    if (!execution) return;
    const t = tabsCtl.active;
    const panel = tabsCtl.panel;
    if (t !== 'logs' && logView) { logView.destroy(); logView = null; }
    if (t === 'overview') replace(panel, overview());
    else if (t === 'gantt') redrawGantt();
    else if (t === 'topology') { if (changed || !topoEl) drawTopology(); else paintTopology(topoEl, execution.taskRunList); }
    else if (t === 'logs') { if (changed || !logView) drawLogs(); else logView.refreshTitles(); }
    else if (t === 'outputs') { if (changed || outputsKey() !== lastOutputsKey) drawOutputs(); }
    else if (t === 'metrics') { if (changed || !metricsLoaded) drawMetrics(); }
  }

  //// overview

  function valueCell(v) {
    if (isKestraUri(v)) return h('span', null, h('span', { class: 'mono' }, v), ' ', h('a', { href: fileUrl(id, v), download: '' }, 'Download'));
    if (v !== null && typeof v === 'object') return h('pre', { class: 'mono', style: { margin: 0, whiteSpace: 'pre-wrap' } }, JSON.stringify(v, null, 2));
    return h('span', { class: 'mono' }, prettyValue(v));
  }
  function kvTable(obj, emptyText) {
    const entries = Object.entries(obj || {});
    if (!entries.length) return h('p', { class: 'muted' }, emptyText);
    return h('div', { class: 'table-wrap' }, h('table', null, h('tbody', null, entries.map(([k, v]) => h('tr', null, h('th', { scope: 'row', style: { textTransform: 'none' } }, k), h('td', null, valueCell(v)))))));
  }

  function overview() {
    const e = execution;
    const st = e.state;
    const hist = st.histories || [];
    const span = stateSpan(st);
    const rows = [
      ['Id', h('span', { class: 'mono' }, e.id)],
      ['Flow', h('span', null, h('a', { href: uiLinkFlow(e.namespace, e.flowId) }, `${e.namespace}.${e.flowId}`), e.flowRevision ? ` · revision ${e.flowRevision}` : '')],
      ['State', stateBadge(st.current)],
      ['Created', timeEl(hist[0] && hist[0].date)],
      ['Started', timeEl(st.startDate || (hist[0] && hist[0].date))],
      ['Ended', st.endDate ? timeEl(st.endDate) : h('span', { class: 'muted' }, isTerminated(st.current) ? '—' : 'not yet')],
      ['Duration', humanDuration(span.ms)],
      ['Attempt', String((e.metadata && e.metadata.attemptNumber) || 1)],
      ['Labels', labelChips(e.labels)],
    ];
    if (e.scheduleDate) rows.push(['Scheduled for', timeEl(e.scheduleDate)]);
    if (e.originalId && e.originalId !== e.id) rows.push(['Original execution', h('a', { href: execLink(e.namespace, e.flowId, e.originalId), class: 'mono' }, e.originalId)]);
    if (e.parentId) rows.push(['Parent (replayed from)', h('a', { href: execLink(e.namespace, e.flowId, e.parentId), class: 'mono' }, e.parentId)]);
    if (e.trigger) {
      const v = e.trigger.variables || {};
      const parent = v.executionId && v.namespace && v.flowId ? h('div', null, 'Triggered by execution ', h('a', { href: execLink(v.namespace, v.flowId, v.executionId), class: 'mono' }, v.executionId), ` of ${v.namespace}.${v.flowId}`) : null;
      rows.push(['Trigger', h('div', null, h('span', { class: 'mono' }, `${e.trigger.id} (${(e.trigger.type || '').split('.').pop()})`), parent,
        Object.keys(v).length ? h('details', null, h('summary', null, 'Trigger variables'), valueCell(v)) : null)]);
    }
    return h('div', { class: 'grid2' },
      h('section', { class: 'panel', 'aria-labelledby': 'ov-h' }, h('h2', { id: 'ov-h' }, 'Overview'),
        h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
        h('p', { class: 'muted', style: { fontSize: '12px' } }, `Times in ${browserTimeZone}.`)),
      h('div', null,
        h('section', { class: 'panel', 'aria-labelledby': 'in-h' }, h('h2', { id: 'in-h' }, 'Inputs'), kvTable(e.inputs, 'No inputs.')),
        h('section', { class: 'panel', 'aria-labelledby': 'out-h' }, h('h2', { id: 'out-h' }, 'Flow outputs'), kvTable(e.outputs, 'No flow outputs.')),
        h('section', { class: 'panel', 'aria-labelledby': 'hist-h' }, h('h2', { id: 'hist-h' }, 'State history'),
          h('ol', { style: { margin: 0, paddingLeft: '20px' } }, hist.map((x) => h('li', null, stateBadge(x.state), ' ', timeEl(x.date, formatDate)))))));
  }

  //// Gantt

  function taskTree() {
    const list = execution.taskRunList || [];
    const byParent = new Map();
    const ids = new Set(list.map((t) => t.id));
    for (const t of list) {
      const p = t.parentTaskRunId && ids.has(t.parentTaskRunId) ? t.parentTaskRunId : '';
      if (!byParent.has(p)) byParent.set(p, []);
      byParent.get(p).push(t);
    }
    const out = [];
    const walk = (p, depth) => {
      for (const t of byParent.get(p) || []) { out.push({ tr: t, depth }); walk(t.id, depth + 1); }
    };
    walk('', 0);
    return out;
  }

  function redrawGantt() {
    const focused = document.activeElement && tabsCtl.panel.contains(document.activeElement) ? document.activeElement.getAttribute('aria-controls') : null;
    const y = window.scrollY;
    replace(tabsCtl.panel, gantt());
    if (focused) { const b = tabsCtl.panel.querySelector(`[aria-controls="${focused}"]`); if (b) b.focus({ preventScroll: true }); }
    window.scrollTo(0, y);
  }

  function gantt() {
    const nodes = taskTree();
    if (!nodes.length) return emptyState(isTerminated(execution.state.current) ? 'No task ran.' : 'Waiting for the first task…');
    const es = stateSpan(execution.state);
    let t0 = es.start, t1 = es.end;
    for (const { tr } of nodes) { const s = stateSpan(tr.state); if (s.start < t0) t0 = s.start; if (s.end > t1) t1 = s.end; }
    const total = Math.max(1, t1 - t0);
    const pct = (t) => `${Math.max(0, Math.min(100, ((t - t0) / total) * 100))}%`;
    const bar = (state, label) => {
      const s = stateSpan(state);
      if (Number.isNaN(s.start)) return null;
      const left = ((s.start - t0) / total) * 100;
      const width = Math.max(0.4, ((s.end - s.start) / total) * 100);
      return [h('div', { class: `gantt-bar state-${(state.current || '').toLowerCase()}${s.running ? ' running' : ''}`, style: { left: `${left}%`, width: `${width}%` }, title: `${state.current} · ${humanDuration(s.ms)}` }),
        h('span', { class: 'gantt-dur', style: left + width > 80 ? { right: `${100 - left}%`, paddingRight: '4px' } : { left: `calc(${left + width}% + 4px)` } }, `${humanDuration(s.ms)}`)];
    };
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { style: { left: pct(t0 + f * total), transform: `translateX(-${f * 100}%)` } }, `+${humanDuration(f * total)}`));
    const rows = [h('div', { class: 'gantt-row head', role: 'presentation', 'aria-hidden': 'true' }, h('div', { class: 'gantt-label' }, 'Task run'), h('div', { class: 'gantt-axis' }, ticks))];
    for (const { tr, depth } of nodes) {
      const open = expanded.has(tr.id);
      const detailId = `gd-${tr.id}`;
      rows.push(h('div', { class: 'gantt-row', role: 'listitem', dataset: { taskrun: tr.id, task: tr.taskId, state: tr.state.current } },
        h('div', { class: 'gantt-label', style: { paddingLeft: `${8 + depth * 16}px` } },
          h('button', { type: 'button', 'aria-expanded': String(open), 'aria-controls': detailId, title: trLabel(tr),
            onclick: (ev) => { if (expanded.has(tr.id)) expanded.delete(tr.id); else expanded.add(tr.id); ev.currentTarget.focus(); redrawGantt(); } },
          open ? '▾ ' : '▸ ', tr.taskId, tr.value !== undefined && tr.value !== null ? h('span', { class: 'val' }, ` ${tr.value}`) : null),
          h('span', { class: 'sr-only' }, tr.state.current)),
        h('div', { class: 'gantt-track' }, bar(tr.state))));
      const attempts = tr.attempts || [];
      if (attempts.length > 1) {
        attempts.forEach((a, i) => rows.push(h('div', { class: 'gantt-row attempt', role: 'listitem' },
          h('div', { class: 'gantt-label', style: { paddingLeft: `${28 + depth * 16}px` } }, `attempt ${i + 1} · ${a.state && a.state.current}`),
          h('div', { class: 'gantt-track' }, a.state ? bar(a.state) : null))));
      }
      if (open) {
        rows.push(h('div', { class: 'gantt-row', role: 'listitem', id: detailId }, h('div', { class: 'gantt-detail' },
          h('dl', { class: 'kv' },
            h('dt', null, 'Task run id'), h('dd', { class: 'mono' }, tr.id),
            h('dt', null, 'State'), h('dd', null, stateBadge(tr.state.current)),
            h('dt', null, 'Started'), h('dd', null, timeEl(tr.state.startDate || (tr.state.histories && tr.state.histories[0] && tr.state.histories[0].date), formatTime)),
            h('dt', null, 'Duration'), h('dd', null, humanDuration(stateSpan(tr.state).ms)),
            h('dt', null, 'Attempts'), h('dd', null, String(attempts.length)),
            h('dt', null, 'History'), h('dd', null, (tr.state.histories || []).map((x) => h('div', null, stateBadge(x.state), ' ', timeEl(x.date, formatTime))))),
          h('div', { class: 'toolbar', style: { marginTop: '8px' } },
            h('button', { type: 'button', onclick: () => { logFilter.taskRunId = tr.id; tabsCtl.select('logs', true); } }, 'Logs of this task run'),
            h('button', { type: 'button', disabled: !isTerminated(execution.state.current), onclick: () => replay(tr.id) }, 'Replay from this task run')))));
      }
    }
    return h('div', null, h('div', { class: 'gantt', role: 'list', 'aria-label': 'Gantt chart of task runs' }, rows),
      h('p', { class: 'muted', style: { fontSize: '12px' } }, 'Select a task run for its details, logs and replay.'));
  }

  //// Topology: the flow at the execution's revision, each task showing its live state

  let topoEl = null;
  async function drawTopology() {
    topoEl = null;
    const panel = tabsCtl.panel;
    replace(panel, h('p', { class: 'loading' }, 'Loading the flow…'));
    let flow;
    try { flow = await loadFlowDef(); } catch (e) { if (tabsCtl.active === 'topology') replace(panel, errorBox(e, 'Could not load the flow')); return; }
    if (!alive || tabsCtl.active !== 'topology') return;
    topoEl = renderTopology(flow);
    topoEl.setAttribute('aria-label', 'Execution topology');
    paintTopology(topoEl, execution.taskRunList);
    replace(panel, topoEl, h('p', { class: 'muted', style: { fontSize: '12px' } }, 'Each task shows the state of its task runs, live.'));
  }

  //// Logs

  const logFilter = { level: 'TRACE', text: '', grouped: true, follow: true, taskRunId: '' };
  let logView = null; // the virtualized list (logview.js) while the Logs tab is shown
  let logsFinal = false; // the shown logs were read once the execution had terminated: the store has them all

  function groupTitle(taskRunId) {
    if (!taskRunId) return [h('span', null, 'Execution')];
    const tr = (execution.taskRunList || []).find((t) => t.id === taskRunId);
    return [h('span', { class: 'mono' }, tr ? trLabel(tr) : taskRunId), tr ? stateBadge(tr.state.current) : null];
  }
  function downloadUrl() {
    const q = new URLSearchParams();
    if (logFilter.level !== 'TRACE') q.set('minLevel', logFilter.level);
    if (logFilter.taskRunId) q.set('taskRunId', logFilter.taskRunId);
    if (logFilter.text) q.set('q', logFilter.text);
    const s = q.toString();
    return `${API}/logs/${enc(id)}/download${s ? `?${s}` : ''}`;
  }
  function drawLogs() {
    if (logView) logView.destroy();
    const reload = () => { download.href = downloadUrl(); loadLogs(); };
    const level = h('select', { id: 'log-level', onchange: () => { logFilter.level = level.value; reload(); } }, LEVELS.map((l) => h('option', { value: l, selected: l === logFilter.level }, l)));
    const search = h('input', { id: 'log-search', type: 'search', value: logFilter.text, placeholder: 'Filter messages', autocomplete: 'off' });
    let t = null;
    search.addEventListener('input', () => { clearTimeout(t); t = setTimeout(() => { logFilter.text = search.value; reload(); }, 250); });
    const grouped = h('input', { id: 'log-grouped', type: 'checkbox', checked: logFilter.grouped, onchange: () => { logFilter.grouped = grouped.checked; reload(); } });
    const follow = h('input', { id: 'log-follow', type: 'checkbox', checked: logFilter.follow, onchange: () => { logFilter.follow = follow.checked; logView.setFollow(follow.checked); } });
    const trSel = h('select', { id: 'log-taskrun', onchange: () => { logFilter.taskRunId = trSel.value; reload(); } },
      h('option', { value: '' }, 'All task runs'),
      taskTree().map(({ tr }) => h('option', { value: tr.id, selected: tr.id === logFilter.taskRunId }, trLabel(tr))));
    const download = h('a', { class: 'button', href: downloadUrl(), download: `${id}.log` }, '⤓ Download');
    logView = createLogView(id, {
      groups: () => taskTree().map(({ tr }) => tr.id),
      groupTitle,
      emptyText: (f) => (f.level !== 'TRACE' || f.text || f.taskRunId ? 'No log line matches these filters.'
        : (isTerminated(execution.state.current) ? 'This execution wrote no logs.' : 'No logs yet — new lines appear here live.')),
    });
    logView.setFollow(logFilter.follow);
    replace(tabsCtl.panel,
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'log-level' }, 'Minimum level'), level),
        h('div', { class: 'field' }, h('label', { for: 'log-taskrun' }, 'Task run'), trSel),
        h('div', { class: 'field' }, h('label', { for: 'log-search' }, 'Search'), search),
        h('label', { class: 'check', style: { display: 'flex', gap: '6px', alignItems: 'center', fontWeight: 'normal' } }, grouped, 'Group by task'),
        h('label', { class: 'check', style: { display: 'flex', gap: '6px', alignItems: 'center', fontWeight: 'normal' } }, follow, 'Follow'),
        download),
      logView.element);
    loadLogs();
  }
  function loadLogs() {
    logsFinal = isTerminated(execution.state.current);
    logView.load(logFilter);
  }

  function onLog(l) {
    if (!l || (l.executionId && l.executionId !== id)) return;
    if (logView && tabsCtl.active === 'logs') logView.push(l);
  }

  /** Re-read the stored logs (after a reconnection or at the end: lines dropped on the way are in the store). */
  function syncLogs() {
    if (logView && tabsCtl.active === 'logs' && !logsFinal) loadLogs();
  }

  //// Outputs

  let lastOutputsKey = '';
  function outputsKey() { return (execution.taskRunList || []).map((t) => `${t.id}:${t.state.current}:${t.outputs ? 1 : 0}`).join(',') + JSON.stringify(execution.outputs || {}).length; }
  function tree(value, name, depth = 0) {
    if (value !== null && typeof value === 'object') {
      const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
      return h('details', { open: depth < 2 }, h('summary', null, h('span', { class: 'k' }, name), h('span', { class: 'muted' }, Array.isArray(value) ? ` [${entries.length}]` : ` {${entries.length}}`)),
        entries.map(([k, v]) => tree(v, k, depth + 1)));
    }
    const leaf = h('div', { class: 'leaf' }, h('span', { class: 'k' }, name), h('span', { class: 'v' }, prettyValue(value)));
    if (isKestraUri(value)) {
      const prev = h('div', { class: 'preview-slot', style: { flexBasis: '100%' } });
      leaf.appendChild(h('button', { type: 'button', onclick: () => preview(value, prev) }, 'Preview'));
      leaf.appendChild(h('a', { class: 'button', href: fileUrl(id, value), download: '' }, 'Download'));
      leaf.appendChild(prev);
    }
    return leaf;
  }
  async function preview(path, slot) {
    replace(slot, h('p', { class: 'loading' }, 'Loading preview…'));
    try {
      const p = await getJson(`/executions/${enc(id)}/file/preview`, { path, maxRows: 100 });
      let body;
      if (p && p.type === 'LIST' && Array.isArray(p.content)) {
        const rows = p.content;
        const objs = rows.every((r) => r && typeof r === 'object' && !Array.isArray(r));
        if (objs) {
          const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
          body = h('table', null, h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
            h('tbody', null, rows.map((r) => h('tr', null, cols.map((c) => h('td', { class: 'mono' }, r[c] === undefined ? '' : prettyValue(r[c])))))));
        } else body = h('pre', null, rows.map((r) => prettyValue(r)).join('\n'));
      } else if (p && p.type === 'IMAGE') {
        body = h('img', { alt: `Preview of ${path}`, src: String(p.content).startsWith('data:') ? p.content : `data:image/${p.extension || 'png'};base64,${p.content}` });
      } else {
        body = h('pre', null, typeof p === 'string' ? p : (p && typeof p.content === 'string' ? p.content : JSON.stringify(p && p.content !== undefined ? p.content : p, null, 2)));
      }
      replace(slot, h('div', { class: 'preview', role: 'region', 'aria-label': `Preview of ${path}` }, body,
        p && p.truncated ? h('p', { class: 'muted' }, 'Preview truncated — download for the whole file.') : null));
    } catch (e) {
      replace(slot, errorBox(e, 'No preview'));
    }
  }
  function drawOutputs() {
    lastOutputsKey = outputsKey();
    const withOutputs = taskTree().filter(({ tr }) => tr.outputs && Object.keys(tr.outputs).length);
    const sections = [];
    if (execution.outputs && Object.keys(execution.outputs).length) sections.push(h('section', { class: 'panel' }, h('h2', null, 'Flow outputs'), h('div', { class: 'tree' }, tree(execution.outputs, 'outputs'))));
    if (withOutputs.length) {
      sections.push(h('section', { class: 'panel' }, h('h2', null, 'Task run outputs'),
        h('div', { class: 'tree' }, withOutputs.map(({ tr, depth }) => h('details', { open: true, style: { marginLeft: `${depth * 14}px` }, dataset: { taskrun: tr.id } },
          h('summary', null, h('strong', { class: 'mono' }, trLabel(tr)), ' ', stateBadge(tr.state.current)),
          Object.entries(tr.outputs).map(([k, v]) => tree(v, k, 1)))))));
    }
    const files = Object.entries(execution.inputs || {}).filter(([, v]) => isKestraUri(v));
    if (files.length) sections.push(h('section', { class: 'panel' }, h('h2', null, 'Input files'), h('div', { class: 'tree' }, files.map(([k, v]) => tree(v, k, 1)))));
    replace(tabsCtl.panel, sections.length ? sections : emptyState('No outputs.', isTerminated(execution.state.current) ? 'No task of this execution produced outputs.' : 'Outputs appear here as tasks finish.'));
  }

  //// Metrics

  let metricsLoaded = false;
  async function drawMetrics() {
    metricsLoaded = true;
    const panel = tabsCtl.panel;
    if (!panel.querySelector('table')) replace(panel, h('p', { class: 'loading' }, 'Loading metrics…'));
    let data;
    try { data = await getJson(`/metrics/${enc(id)}`, { page: 1, size: 500, sort: 'timestamp:asc' }); } catch (e) { if (tabsCtl.active === 'metrics') replace(panel, errorBox(e, 'Could not load metrics')); return; }
    if (!alive || tabsCtl.active !== 'metrics') return;
    const list = Array.isArray(data) ? data : (data && data.results) || [];
    const trs = new Map((execution.taskRunList || []).map((t) => [t.id, t]));
    const refresh = h('button', { type: 'button', onclick: () => { metricsLoaded = false; drawMetrics(); } }, 'Refresh');
    if (!list.length) { replace(panel, h('div', null, h('div', { class: 'toolbar' }, refresh), emptyState('No metrics.', 'Tasks that emit counters or timers list them here.'))); return; }
    replace(panel, h('div', null, h('div', { class: 'toolbar' }, refresh),
      h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', null, 'Task'), h('th', null, 'Name'), h('th', null, 'Type'), h('th', null, 'Value'), h('th', { class: 'hide-sm' }, 'Tags'), h('th', { class: 'hide-sm' }, 'Time'))),
        h('tbody', null, list.map((m) => h('tr', null,
          h('td', { class: 'mono' }, trs.has(m.taskRunId) ? trLabel(trs.get(m.taskRunId)) : (m.taskId || '')),
          h('td', { class: 'mono' }, m.name), h('td', null, m.type),
          h('td', { class: 'mono', title: String(m.value) }, m.type === 'timer' ? humanDuration(+m.value) : String(m.value)),
          h('td', { class: 'hide-sm' }, labelChips(m.tags)),
          h('td', { class: 'hide-sm nowrap' }, timeEl(m.timestamp, formatTime)))))))));
  }

  //// Actions

  async function kill() {
    confirmDialog('Kill execution', `Kill execution ${id}? Running tasks are cancelled and the execution ends KILLED.`, 'Kill', async () => {
      await api(`/executions/${enc(id)}/kill`, { method: 'DELETE' });
      toast('Kill requested', 'success');
    }, { danger: true });
  }

  async function restart() {
    confirmDialog('Restart execution', `Restart execution ${id} from its failed or paused task runs?`, 'Restart', async () => {
      const e = await api(`/executions/${enc(id)}/restart`, { method: 'POST' });
      toast('Execution restarted', 'success');
      if (e && e.id && e.id !== id) navigate(executionPageUrl(e));
      else { if (e && e.id) setExecution(e); connect(); }
    });
  }

  function replay(taskRunId = '') {
    openDialog('Replay execution', (close) => {
      const sel = h('select', { id: 'replay-taskrun' }, h('option', { value: '' }, 'From the start (all tasks)'),
        taskTree().map(({ tr, depth }) => h('option', { value: tr.id, selected: tr.id === taskRunId }, `${'  '.repeat(depth)}${trLabel(tr)} — ${tr.state.current}`)));
      const rev = h('input', { id: 'replay-revision', type: 'number', min: '1', step: '1', placeholder: `current (${execution.flowRevision ?? 'latest'})` });
      const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Replay');
      return h('form', {
        onsubmit: async (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          try {
            const e = await api(`/executions/${enc(id)}/replay`, { method: 'POST', query: { taskRunId: sel.value, revision: rev.value } });
            close();
            toast(`Replay ${e.id} created`, 'success');
            navigate(executionPageUrl(e));
          } catch (ex) { err.hidden = false; err.textContent = ex.message; submit.disabled = false; }
        },
      }, h('p', null, 'A replay is a new execution. Task runs before the chosen one are kept; the chosen one and those after run again.'),
      h('div', { class: 'form-field' }, h('label', { for: 'replay-taskrun' }, 'Replay from task run'), sel),
      h('div', { class: 'form-field' }, h('label', { for: 'replay-revision' }, 'Flow revision (optional)'), rev),
      err, h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    });
  }

  async function loadFlowDef() {
    if (flowDef) return flowDef;
    try {
      flowDef = await getJson(`/flows/${enc(execution.namespace)}/${enc(execution.flowId)}`, { revision: execution.flowRevision, allowDeleted: 'true' });
    } catch (e) {
      flowDef = await getJson(`/executions/${enc(id)}/flow`);
    }
    return flowDef;
  }

  async function resume() {
    const paused = (execution.taskRunList || []).filter((t) => t.state.current === 'PAUSED');
    let onResume = [];
    let pausedTask = null;
    try {
      const f = await loadFlowDef();
      for (const tr of paused) {
        const task = findTask(f, tr.taskId);
        if (task) { pausedTask = task; onResume = task.onResume || []; break; }
      }
    } catch (e) {
      toast(`Could not load the flow for the resume form: ${e.message}`, 'error');
    }
    openDialog(`Resume execution${pausedTask ? ` paused at ${pausedTask.id}` : ''}`, (close) => {
      const form = createInputsForm(onResume);
      const err = h('div', { class: 'error-box', role: 'alert', hidden: true });
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Resume');
      return h('form', {
        novalidate: true,
        onsubmit: async (ev) => {
          ev.preventDefault();
          err.hidden = true;
          submit.disabled = true;
          try {
            await api(`/executions/${enc(id)}/resume`, { method: 'POST', body: form.fill(new FormData()) });
            close();
            toast('Execution resumed', 'success');
            if (!socket) connect();
          } catch (ex) {
            const unmatched = form.showErrors(ex);
            if (unmatched.length) { err.hidden = false; replace(err, h('p', { class: 'error-title' }, `Could not resume${ex.status ? ` (HTTP ${ex.status})` : ''}`), unmatched.map((m) => h('p', null, m))); }
            submit.disabled = false;
          }
        },
      }, form.empty ? h('p', { class: 'muted' }, 'The paused task asks for no input.') : h('h3', null, 'On resume'), form.element, err,
      h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    });
  }

  function changeStatus() {
    openDialog('Change status', (close) => {
      const cur = execution.state.current;
      const sel = h('select', { id: 'new-status' }, TERMINAL_TARGETS.filter((s) => s !== cur).map((s) => h('option', { value: s }, s)));
      const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Change status');
      return h('form', {
        onsubmit: async (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          try {
            const e = await api(`/executions/${enc(id)}/change-status`, { method: 'POST', query: { status: sel.value } });
            if (e && e.id === id) setExecution(e);
            close();
            toast(`Status changed to ${sel.value}`, 'success');
          } catch (ex) { err.hidden = false; err.textContent = ex.message; submit.disabled = false; }
        },
      }, h('p', null, `The execution is ${cur}. A terminated execution can be given another terminal state.`),
      h('div', { class: 'form-field' }, h('label', { for: 'new-status' }, 'New status'), sel), err,
      h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    });
  }

  //// live connection

  function setLive(s, text) { liveEl.dataset.status = s; liveEl.textContent = text || s; }

  function connect() {
    if (socket) socket.close();
    socket = openSocket(`/executions/${enc(id)}/ws`, {
      onOpen: () => { stopPolling(); syncLogs(); },
      onMessage: (msg) => {
        if (!msg) return;
        if (msg.type === 'execution') setExecution(msg.execution);
        else if (msg.type === 'taskrun') applyTaskRun(msg.executionId, msg.taskRun);
        else if (msg.type === 'log') onLog(msg.log);
        else if (msg.type === 'end') {
          if (msg.execution) setExecution(msg.execution);
          socket = null;
          syncLogs();
          metricsLoaded = false;
          if (tabsCtl.active === 'metrics') drawMetrics();
        }
      },
      onStatus: (s) => {
        if (s === 'live') setLive('live', 'live');
        else if (s === 'ended') setLive('ended', 'final');
        else if (s === 'reconnecting') setLive('reconnecting', 'reconnecting…');
        else if (s === 'offline') setLive('offline', 'offline — reconnects when the network is back');
        else if (s === 'unavailable') { setLive('unavailable', 'live updates unavailable — polling'); startPolling(); }
        else if (s === 'connecting') setLive('connecting', 'connecting…');
      },
      onRefused: (code, reason) => { setLive('unavailable', `live updates refused (${code}${reason ? ': ' + reason : ''})`); startPolling(); },
    });
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(async () => {
      try {
        const e = await getJson(`/executions/${enc(id)}`);
        setExecution(e);
        await syncLogs();
        if (isTerminated(e.state.current)) { stopPolling(); if (socket) { socket.close(); socket = null; } setLive('ended', 'final'); }
      } catch { /* keep polling */ }
    }, 2000);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }

  // durations of a running execution tick every second
  const ticker = setInterval(() => {
    if (!execution || isTerminated(execution.state.current) || execution.state.current === 'PAUSED') return;
    drawHead();
    if (tabsCtl.active === 'gantt') redrawGantt();
  }, 1000);

  getJson(`/executions/${enc(id)}`).then((e) => {
    if (!alive) return;
    if (e.namespace !== params.namespace || e.flowId !== params.flowId) {
      navigate(`${execLink(e.namespace, e.flowId, e.id)}${params.tab ? '/' + params.tab : ''}`, { replace: true });
      return;
    }
    execution = e;
    replace(root, head, tabsCtl.element);
    drawHead();
    tabsCtl.select(params.tab || 'overview');
    if (isTerminated(e.state.current)) setLive('ended', 'final');
    connect();
  }).catch((e) => {
    if (!alive) return;
    setLive('closed', '');
    replace(root, head, e instanceof ApiError && e.status === 404
      ? emptyState('Execution not found', `There is no execution ${id}. It may have been deleted.`, h('a', { href: '/ui/executions' }, 'Back to executions'))
      : errorBox(e, 'Could not load the execution'));
  });

  return () => { alive = false; clearInterval(ticker); stopPolling(); if (socket) socket.close(); if (logView) logView.destroy(); };
}
