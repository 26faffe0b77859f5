// Small DOM and formatting helpers shared by every page. No dependencies.

/** Build an element: h('a', {href, class, onclick}, child, [children], 'text'). null/false children are skipped. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'multiple' || k === 'disabled' || k === 'hidden' || k === 'open') el[k] = !!v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
export function replace(el, ...children) { clear(el); append(el, children); return el; }

let idCounter = 0;
export function uid(prefix = 'id') { idCounter += 1; return `${prefix}-${idCounter}`; }

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

//// States (Kestra's State.Type)

export const STATES = ['CREATED', 'QUEUED', 'RUNNING', 'PAUSED', 'RESTARTED', 'KILLING', 'SUCCESS', 'WARNING',
  'FAILED', 'KILLED', 'CANCELLED', 'RETRYING', 'RETRIED', 'SKIPPED'];
export const TERMINATED = new Set(['SUCCESS', 'WARNING', 'FAILED', 'KILLED', 'CANCELLED', 'RETRIED', 'SKIPPED']);
export const isTerminated = (s) => TERMINATED.has(s);

export function stateBadge(state, extra = '') {
  const s = state || 'UNKNOWN';
  return h('span', { class: `badge state-${s.toLowerCase()} ${extra}`.trim(), title: `State: ${s}` }, s);
}

//// Time

/** Parse an ISO-8601 duration (PT1.5S, P1DT2H3M) to milliseconds; NaN if not a duration. */
export function parseIsoDuration(text) {
  if (typeof text !== 'string') return NaN;
  const m = /^(-)?P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(-?\d+(?:\.\d+)?)H)?(?:(-?\d+(?:\.\d+)?)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$/.exec(text);
  if (!m) return NaN;
  const [, neg, d, hh, mm, ss] = m;
  const ms = ((+d || 0) * 86400 + (+hh || 0) * 3600 + (+mm || 0) * 60 + (+ss || 0)) * 1000;
  return neg ? -ms : ms;
}

/** Human duration: 12ms, 4.50s, 2m 03s, 1h 02m, 3d 4h. */
export function humanDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)}s`;
  const totalS = Math.floor(s);
  const d = Math.floor(totalS / 86400), hr = Math.floor((totalS % 86400) / 3600), mi = Math.floor((totalS % 3600) / 60), se = totalS % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${String(mi).padStart(2, '0')}m`;
  return `${mi}m ${String(se).padStart(2, '0')}s`;
}

export const toMs = (iso) => (iso ? Date.parse(iso) : NaN);

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
export const browserTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function formatDate(iso) {
  const t = toMs(iso);
  return Number.isNaN(t) ? '—' : dateFmt.format(new Date(t));
}
export function formatTime(iso) {
  const t = toMs(iso);
  if (Number.isNaN(t)) return '—';
  const d = new Date(t);
  return `${timeFmt.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}
export function timeEl(iso, fmt = formatDate) {
  return h('time', { datetime: iso || '', title: iso ? `${iso} (shown in ${browserTimeZone})` : '' }, fmt(iso));
}

/** Start / end / duration of a Kestra State object; a running state lasts until now. */
export function stateSpan(state) {
  if (!state) return { start: NaN, end: NaN, ms: NaN };
  const hist = state.histories || [];
  const start = toMs(state.startDate) || (hist.length ? toMs(hist[0].date) : NaN);
  let end = toMs(state.endDate);
  const running = Number.isNaN(end) && !isTerminated(state.current) && state.current !== 'PAUSED';
  if (Number.isNaN(end)) end = running ? Date.now() : (hist.length ? toMs(hist[hist.length - 1].date) : NaN);
  return { start, end, ms: end - start, running };
}

export function shortId(id) { return id ? (id.length > 10 ? id.slice(0, 8) + '…' : id) : ''; }

//// Values

export function isKestraUri(v) { return typeof v === 'string' && v.startsWith('kestra:///'); }

export function prettyValue(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return v;
  return JSON.stringify(v, null, 2);
}

export function labelsToList(labels) {
  if (!labels) return [];
  if (Array.isArray(labels)) return labels.filter((l) => l && l.key !== undefined);
  return Object.entries(labels).map(([key, value]) => ({ key, value }));
}

export function labelChips(labels) {
  const list = labelsToList(labels);
  if (!list.length) return h('span', { class: 'muted' }, 'none');
  return h('span', { class: 'chips' }, list.map((l) => h('span', { class: 'chip' }, `${l.key}:${l.value}`)));
}

export function uiLinkExecution(e) {
  return `/ui/executions/${encodeURIComponent(e.namespace)}/${encodeURIComponent(e.flowId)}/${encodeURIComponent(e.id)}`;
}
export function uiLinkFlow(namespace, id, tab) {
  return `/ui/flows/edit/${encodeURIComponent(namespace)}/${encodeURIComponent(id)}${tab ? '/' + tab : ''}`;
}

export function emptyState(title, detail, ...actions) {
  return h('div', { class: 'empty', role: 'status' }, h('p', { class: 'empty-title' }, title), detail ? h('p', { class: 'muted' }, detail) : null, actions);
}

export function errorBox(err, title = 'Something went wrong') {
  const status = err && err.status ? `HTTP ${err.status}` : '';
  const details = (err && err.errors) || [];
  return h('div', { class: 'error-box', role: 'alert' },
    h('p', { class: 'error-title' }, title, status ? h('span', { class: 'muted' }, ` (${status})`) : null),
    h('p', null, err && err.message ? err.message : String(err)),
    details.length ? h('ul', null, details.map((d) => h('li', null, d.path ? `${d.path}: ` : '', d.message))) : null);
}
