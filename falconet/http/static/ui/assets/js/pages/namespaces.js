// /ui/namespaces and /ui/namespaces/edit/{namespace}/{tab}: every namespace (with its parents), and per
// namespace an overview (its flows and recent executions), its executions, its files (nsfiles.js) and its
// KV store (list, add, edit with type and expiry, delete — /api/v1/namespaces/{ns}/kv).
import { h, replace, uiLinkFlow, emptyState, errorBox, timeEl } from '../util.js';
import { api, getJson, enc } from '../api.js';
import { tabs, openDialog, confirmDialog, toast } from '../components.js';
import { navigate } from '../main.js';
import { renderExecutionsList } from './executions.js';
import { renderNamespaceFiles } from '../nsfiles.js';

export const uiLinkNamespace = (ns, tab) => `/ui/namespaces/edit/${enc(ns)}${tab ? `/${tab}` : ''}`;

/** Every namespace and each of its parents (a.b.c → a, a.b, a.b.c), sorted. */
export function withParents(list) {
  const out = new Set();
  for (const ns of list || []) {
    const parts = String(ns).split('.');
    for (let i = 1; i <= parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return [...out].sort();
}

export function render(root, params) {
  return params.namespace ? renderNamespace(root, params) : renderList(root);
}

function renderList(root) {
  document.title = 'Namespaces · Falconet';
  const body = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading namespaces…'));
  replace(root, h('div', { class: 'page-head' }, h('h1', null, 'Namespaces')), body);
  let alive = true;
  getJson('/flows/distinct-namespaces').then((list) => {
    if (!alive) return;
    const own = new Set(list || []);
    const all = withParents(list);
    if (!all.length) { replace(body, emptyState('No namespace yet.', 'A namespace exists once a flow is saved in it.', h('a', { class: 'button primary', href: '/ui/flows/new' }, '+ Create flow'))); return; }
    replace(body, h('ul', { class: 'ns-tree', 'aria-label': 'Namespaces' }, all.map((ns) => {
      const depth = ns.split('.').length - 1;
      return h('li', { style: { paddingLeft: `${depth * 18}px` }, dataset: { namespace: ns } },
        h('a', { href: uiLinkNamespace(ns) }, depth ? ns.split('.').pop() : ns),
        depth ? h('span', { class: 'muted small' }, ` ${ns}`) : null,
        own.has(ns) ? null : h('span', { class: 'muted small' }, ' (parent, no flow of its own)'));
    })));
  }).catch((e) => { if (alive) replace(body, errorBox(e, 'Could not load namespaces')); });
  return () => { alive = false; };
}

function renderNamespace(root, params) {
  const ns = params.namespace;
  document.title = `${ns} · Namespaces · Falconet`;
  const items = [{ id: 'overview', label: 'Overview' }, { id: 'executions', label: 'Executions' }, { id: 'files', label: 'Files' }, { id: 'kv', label: 'KV Store' }];
  let cleanup = null;
  const tabsCtl = tabs(items, params.tab || 'overview', (id, user) => {
    if (cleanup) { cleanup(); cleanup = null; }
    if (user) navigate(uiLinkNamespace(ns, id === 'overview' ? '' : id), { replace: true, silent: true });
    const box = h('div');
    replace(tabsCtl.panel, box);
    if (id === 'overview') cleanup = overview(box, ns);
    else if (id === 'executions') cleanup = renderExecutionsList(box, { fixed: { namespace: ns }, syncUrl: false });
    else if (id === 'files') cleanup = renderNamespaceFiles(box, ns);
    else if (id === 'kv') cleanup = kvStore(box, ns);
  }, { label: 'Namespace sections' });
  replace(root,
    h('div', { class: 'page-head' }, h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: '/ui/namespaces' }, 'Namespaces')),
      h('h1', null, ns))),
    tabsCtl.element);
  tabsCtl.select(params.tab || 'overview');
  return () => { if (cleanup) cleanup(); };
}

function overview(box, ns) {
  let alive = true;
  const flows = h('div', null, h('p', { class: 'loading' }, 'Loading flows…'));
  const recent = h('div');
  replace(box, h('div', { class: 'grid2' },
    h('section', { class: 'panel', 'aria-label': 'Flows' }, h('h2', null, 'Flows'), flows),
    h('section', { class: 'panel', 'aria-label': 'Recent executions' }, h('h2', null, 'Recent executions'), recent)));
  getJson('/flows/search', { namespace: ns, size: 100, sort: 'id:asc' }).then((data) => {
    if (!alive) return;
    const list = (data && data.results) || [];
    replace(flows, list.length
      ? h('ul', { class: 'dash-list' }, list.map((f) => h('li', null, h('a', { href: uiLinkFlow(f.namespace, f.id) }, f.id),
        f.namespace !== ns ? h('span', { class: 'muted small' }, f.namespace) : null, f.disabled ? h('span', { class: 'chip' }, 'disabled') : null)))
      : h('p', { class: 'muted' }, 'No flow in this namespace.'));
  }).catch((e) => { if (alive) replace(flows, errorBox(e, 'Could not load flows')); });
  const stop = renderExecutionsList(recent, { fixed: { namespace: ns }, syncUrl: false });
  return () => { alive = false; stop(); };
}

//// KV store

export const KV_TYPES = ['STRING', 'NUMBER', 'BOOLEAN', 'DATETIME', 'DATE', 'DURATION', 'JSON'];

/** The PUT body of a value typed in the form (Kestra's UI: JSON for JSON/number/boolean, text otherwise). */
export function kvBody(type, text) {
  const t = String(text ?? '');
  if (type === 'NUMBER') {
    if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t.trim())) throw new Error('Not a number');
    return { body: t.trim(), contentType: 'application/json' };
  }
  if (type === 'BOOLEAN') {
    if (!/^(true|false)$/.test(t)) throw new Error('Choose true or false');
    return { body: t, contentType: 'application/json' };
  }
  if (type === 'JSON') {
    try { JSON.parse(t); } catch { throw new Error('Not valid JSON'); }
    return { body: t, contentType: 'application/json' };
  }
  if (type === 'DATETIME' && Number.isNaN(Date.parse(t))) throw new Error('Not a date and time');
  if (type === 'DATE' && !/^\d{4}-\d{2}-\d{2}$/.test(t)) throw new Error('Not a date (YYYY-MM-DD)');
  if (type === 'DURATION' && !/^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/.test(t)) throw new Error('Not an ISO-8601 duration (PT5M)');
  // a string: sent as a JSON string, so "12" stays the text 12
  return { body: JSON.stringify(t), contentType: 'application/json' };
}

function kvDialog(ns, entry, done) {
  openDialog(entry ? `Edit ${entry.key}` : 'New key', (close) => {
    const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
    const keyIn = h('input', { id: 'kv-key', type: 'text', required: true, value: entry ? entry.key : '', disabled: !!entry, autocomplete: 'off', pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]*' });
    const typeSel = h('select', { id: 'kv-type' }, KV_TYPES.map((t) => h('option', { value: t, selected: entry && entry.type === t }, t)));
    const valueBox = h('div');
    let valueIn;
    const drawValue = (initial) => {
      const t = typeSel.value;
      if (t === 'BOOLEAN') valueIn = h('select', { id: 'kv-value' }, ['true', 'false'].map((v) => h('option', { value: v, selected: String(initial) === v }, v)));
      else if (t === 'JSON') valueIn = h('textarea', { id: 'kv-value', rows: 6, class: 'mono' }, initial === undefined ? '' : (typeof initial === 'string' ? initial : JSON.stringify(initial, null, 2)));
      else valueIn = h('input', { id: 'kv-value', type: 'text', autocomplete: 'off', value: initial === undefined ? '' : String(initial), placeholder: t === 'DURATION' ? 'PT5M' : t === 'DATE' ? '2025-01-31' : t === 'DATETIME' ? '2025-01-31T10:00:00Z' : '' });
      replace(valueBox, h('label', { for: 'kv-value' }, 'Value'), valueIn);
    };
    typeSel.addEventListener('change', () => drawValue(valueIn && valueIn.value));
    drawValue(entry ? entry.value : undefined);
    const ttl = h('input', { id: 'kv-ttl', type: 'text', autocomplete: 'off', placeholder: 'PT1H, P7D — empty: never expires' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Save');
    return h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        let req;
        try {
          if (!keyIn.value.trim()) throw new Error('The key is required');
          req = kvBody(typeSel.value, valueIn.value);
          if (ttl.value.trim() && !/^P/.test(ttl.value.trim())) throw new Error('The expiry is an ISO-8601 duration (PT1H)');
        } catch (ex) { err.hidden = false; replace(err, ex.message); return; }
        submit.disabled = true;
        try {
          const headers = { 'Content-Type': req.contentType };
          if (ttl.value.trim()) headers.ttl = ttl.value.trim();
          await api(`/namespaces/${enc(ns)}/kv/${enc(keyIn.value.trim())}`, { method: 'PUT', body: req.body, headers });
          toast(`Saved ${keyIn.value.trim()}`, 'success');
          close();
          done();
        } catch (ex) { err.hidden = false; replace(err, ex.message); submit.disabled = false; }
      },
    },
    h('div', { class: 'field' }, h('label', { for: 'kv-key' }, 'Key'), keyIn),
    h('div', { class: 'field' }, h('label', { for: 'kv-type' }, 'Type'), typeSel),
    h('div', { class: 'field' }, valueBox),
    h('div', { class: 'field' }, h('label', { for: 'kv-ttl' }, 'Expires after'), ttl, entry && entry.expirationDate ? h('small', { class: 'muted' }, 'Now expires ', timeEl(entry.expirationDate), '; empty keeps no expiry.') : null),
    err, h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
  });
}

function kvStore(box, ns) {
  let alive = true;
  const list = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading keys…'));
  replace(box,
    h('div', { class: 'filters' }, h('span', { class: 'spacer' }), h('button', { type: 'button', class: 'primary', onclick: () => kvDialog(ns, null, load) }, '+ Add a key')),
    list);
  async function edit(e) {
    try {
      const v = await getJson(`/namespaces/${enc(ns)}/kv/${enc(e.key)}`);
      kvDialog(ns, { ...e, type: v.type, value: v.value }, load);
    } catch (ex) { toast(`Could not read ${e.key}: ${ex.message}`, 'error', 10000); }
  }
  async function load() {
    try {
      const entries = await getJson(`/namespaces/${enc(ns)}/kv`);
      if (!alive) return;
      if (!entries.length) { replace(list, emptyState('No key in this namespace.', 'Flows read them with {{ kv(\'key\') }}.')); return; }
      replace(list, h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, ['Key', 'Description', 'Updated', 'Expires', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, entries.map((e) => h('tr', { dataset: { key: e.key } },
          h('td', { class: 'mono' }, e.key),
          h('td', { class: 'muted' }, e.description || ''),
          h('td', null, timeEl(e.updateDate)),
          h('td', null, e.expirationDate ? timeEl(e.expirationDate) : h('span', { class: 'muted' }, 'never')),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', onclick: () => edit(e) }, 'Edit'),
            h('button', { type: 'button', class: 'danger', onclick: () => confirmDialog(`Delete ${e.key}?`, `The key ${e.key} of ${ns} is deleted.`, 'Delete', async () => {
              await api(`/namespaces/${enc(ns)}/kv/${enc(e.key)}`, { method: 'DELETE' });
              toast(`Deleted ${e.key}`, 'success');
              load();
            }, { danger: true }) }, 'Delete'))))))));
    } catch (e) { if (alive) replace(list, errorBox(e, 'Could not load the KV store')); }
  }
  load();
  return () => { alive = false; };
}
