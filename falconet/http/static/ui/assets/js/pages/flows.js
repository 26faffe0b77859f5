// /ui/flows — flows list with namespace filter, search, sortable columns, paging, each flow's last
// execution; create from a template, import (YAML or zip), and on the selected flows: export (zip or
// one YAML), enable, disable, delete.
import { h, replace, debounce, labelChips, uiLinkFlow, uiLinkExecution, emptyState, errorBox, stateBadge, timeEl } from '../util.js';
import { api, getJson, enc, API } from '../api.js';
import { pager, openDialog, confirmDialog, toast } from '../components.js';
import { navigate } from '../main.js';
import { TEMPLATES } from '../flowtemplates.js';

/** Download `text` (or a Blob) as a file. */
export function downloadText(name, text, type = 'application/x-yaml') {
  const url = URL.createObjectURL(text instanceof Blob ? text : new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The sources of flows as one multi-document YAML. */
export async function exportYaml(flows) {
  const sources = await Promise.all(flows.map((f) => getJson(`/flows/${enc(f.namespace)}/${enc(f.id)}`, { source: 'true' }).then((x) => x.source.replace(/\n*$/, '\n'))));
  return sources.join('---\n');
}

const idsBody = (flows) => ({ body: JSON.stringify(flows.map((f) => ({ namespace: f.namespace, id: f.id }))), headers: { 'Content-Type': 'application/json' } });

/** A zip of the flows' sources (POST /flows/export/by-ids). */
async function exportZip(flows) {
  const { body, headers } = idsBody(flows);
  const resp = await fetch(`${API}/flows/export/by-ids`, { method: 'POST', body, headers });
  if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).message || resp.statusText);
  return resp.blob();
}

function templateDialog() {
  openDialog('Create a flow', (close) => h('ul', { class: 'template-list' },
    h('li', null, h('a', { href: '/ui/flows/new', onclick: close }, h('strong', null, 'Blank flow'), h('span', { class: 'muted' }, ' — a single Log task'))),
    TEMPLATES.map((t) => h('li', null, h('a', { href: `/ui/flows/new?template=${t.id}`, onclick: close }, h('strong', null, t.title)), h('span', { class: 'muted' }, ` — ${t.description}`)))));
}

const SIZE = 25;

export function render(root, _params, query) {
  document.title = 'Flows · Falconet';
  const SORTS = ['id', 'namespace'];
  const state = { namespace: query.namespace || '', q: query.q || '', page: Math.max(1, +query.page || 1),
    sort: SORTS.includes((query.sort || '').split(':')[0]) ? query.sort : 'id:asc' };
  const nsSelect = h('select', { id: 'flows-ns', onchange: () => { state.namespace = nsSelect.value; state.page = 1; load(); } },
    h('option', { value: '' }, 'All namespaces'));
  const search = h('input', { id: 'flows-q', type: 'search', placeholder: 'Search flows', value: state.q, autocomplete: 'off' });
  search.addEventListener('input', debounce(() => { state.q = search.value.trim(); state.page = 1; load(); }, 250));
  const results = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading flows…'));
  // import: a YAML file of one or more flows (--- between documents) or a zip of them, created or updated
  const importInput = h('input', { type: 'file', id: 'flows-import', accept: '.yml,.yaml,.zip', class: 'sr-only', onchange: async () => {
    const file = importInput.files && importInput.files[0];
    importInput.value = '';
    if (!file) return;
    try {
      const form = new FormData();
      form.append('fileUpload', file, file.name);
      const failed = await api('/flows/import', { method: 'POST', body: form });
      if (failed && failed.length) toast(`Imported ${file.name}; not imported (invalid): ${failed.join(', ')}`, 'error', 10000);
      else toast(`Imported ${file.name}`, 'success');
      load();
    } catch (e) { toast(`Import failed: ${e.message}`, 'error', 10000); }
  } });
  const importLabel = h('label', { for: 'flows-import', class: 'button', tabindex: '0', role: 'button',
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); importInput.click(); } } }, 'Import');
  let current = []; // flows of the page
  const checked = () => current.filter((f) => results.querySelector(`input.sel[data-key="${CSS.escape(`${f.namespace}/${f.id}`)}"]`)?.checked);
  const selCount = h('span', { class: 'muted' });
  const bulkAct = (label, fn) => h('button', { type: 'button', onclick: async () => {
    const list = checked();
    if (!list.length) return;
    try { await fn(list); } catch (e) { toast(`${label} failed: ${e.message}`, 'error', 10000); }
  } }, label);
  const bulk = h('div', { class: 'bulk-bar', role: 'toolbar', 'aria-label': 'Flow actions', hidden: true }, selCount,
    bulkAct('Export zip', async (list) => downloadText('flows.zip', await exportZip(list))),
    bulkAct('Export YAML', async (list) => downloadText(list.length === 1 ? `${list[0].namespace}.${list[0].id}.yml` : 'flows.yml', await exportYaml(list))),
    bulkAct('Enable', async (list) => { const r = await api('/flows/enable/by-ids', { method: 'POST', ...idsBody(list) }); toast(`Enabled ${r.count} flow${r.count === 1 ? '' : 's'}`, 'success'); load(); }),
    bulkAct('Disable', async (list) => { const r = await api('/flows/disable/by-ids', { method: 'POST', ...idsBody(list) }); toast(`Disabled ${r.count} flow${r.count === 1 ? '' : 's'}`, 'success'); load(); }),
    h('button', { type: 'button', class: 'danger', onclick: () => {
      const list = checked();
      if (!list.length) return;
      confirmDialog(`Delete ${list.length} flow${list.length === 1 ? '' : 's'}?`, list.map((f) => `${f.namespace}.${f.id}`).join(', '), 'Delete', async () => {
        const res = await api('/flows/delete/by-ids', { method: 'DELETE', ...idsBody(list) });
        toast(`Deleted ${res.count} flow${res.count === 1 ? '' : 's'}`, 'success');
        load();
      }, { danger: true });
    } }, 'Delete'));
  const updateBulk = () => { const n = checked().length; bulk.hidden = !n; selCount.textContent = `${n} selected`; };
  function sortHeader(field, label, cls) {
    const [cur, dir] = state.sort.split(':');
    const on = cur === field;
    return h('th', { scope: 'col', class: cls || '', 'aria-sort': on ? (dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort-btn', onclick: () => { state.sort = `${field}:${on && dir === 'asc' ? 'desc' : 'asc'}`; state.page = 1; load(); } },
        label, h('span', { 'aria-hidden': 'true' }, on ? (dir === 'asc' ? ' ▲' : ' ▼') : '')));
  }
  // each flow's last execution (POST /executions/latest), filled in after the table is drawn
  async function lastExecutions(flows, my) {
    let latest = [];
    try {
      latest = await api('/executions/latest', { method: 'POST', ...idsBody(flows) });
    } catch { latest = null; }
    if (my !== seq || !alive) return;
    for (const f of flows) {
      const cell = results.querySelector(`td.last-exec[data-key="${CSS.escape(`${f.namespace}/${f.id}`)}"]`);
      if (!cell) continue;
      const e = latest && latest.find((x) => x.namespace === f.namespace && x.flowId === f.id);
      replace(cell, latest === null ? h('span', { class: 'muted' }, '—')
        : e ? [h('a', { href: uiLinkExecution(e), 'aria-label': `Last execution of ${f.id}: ${e.status}` }, stateBadge(e.status)), ' ', timeEl(e.startDate)]
          : h('span', { class: 'muted' }, 'never run'));
    }
  }
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Flows'), h('span', { class: 'spacer' }),
      importLabel, importInput,
      h('a', { class: 'button', href: '/ui/flows/new', onclick: (e) => { e.preventDefault(); templateDialog(); } }, 'From a template…'),
      h('a', { class: 'button primary', href: '/ui/flows/new' }, '+ Create flow')),
    h('div', { class: 'filters', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'flows-ns' }, 'Namespace'), nsSelect),
      h('div', { class: 'field' }, h('label', { for: 'flows-q' }, 'Search'), search)),
    bulk, results);

  let alive = true;
  getJson('/flows/distinct-namespaces').then((list) => {
    if (!alive || !Array.isArray(list)) return;
    if (state.namespace && !list.includes(state.namespace)) list = [state.namespace, ...list];
    list.forEach((ns) => nsSelect.appendChild(h('option', { value: ns, selected: ns === state.namespace }, ns)));
  }).catch(() => { if (state.namespace) nsSelect.appendChild(h('option', { value: state.namespace, selected: true }, state.namespace)); });

  let seq = 0;
  async function load() {
    const my = ++seq;
    const params = new URLSearchParams();
    if (state.namespace) params.set('namespace', state.namespace);
    if (state.q) params.set('q', state.q);
    if (state.page > 1) params.set('page', state.page);
    if (state.sort !== 'id:asc') params.set('sort', state.sort);
    navigate(`/ui/flows${params.toString() ? '?' + params : ''}`, { replace: true, silent: true });
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await getJson('/flows/search', { page: state.page, size: SIZE, namespace: state.namespace, q: state.q, sort: state.sort });
      if (my !== seq || !alive) return;
      const flows = (data && data.results) || [];
      current = flows;
      updateBulk();
      if (!flows.length) {
        replace(results, state.namespace || state.q
          ? emptyState('No flow matches these filters.', 'Change the namespace or the search text.')
          : emptyState('No flows yet.', 'Create your first flow in the editor.', h('a', { class: 'button primary', href: '/ui/flows/new' }, '+ Create flow')));
      } else {
        replace(results,
          h('div', { class: 'table-wrap' }, h('table', null,
            h('thead', null, h('tr', null, h('th', { class: 'sel-cell' }, h('input', { type: 'checkbox', 'aria-label': 'Select every flow of this page', onchange: (e) => {
              results.querySelectorAll('input.sel').forEach((c) => { c.checked = e.target.checked; });
              updateBulk();
            } })), sortHeader('id', 'Id'), sortHeader('namespace', 'Namespace'), h('th', null, 'Last execution'), h('th', { class: 'hide-sm' }, 'Revision'), h('th', { class: 'hide-sm' }, 'Labels'), h('th', { class: 'hide-sm' }, 'Description'))),
            h('tbody', null, flows.map((f) => h('tr', { dataset: { flow: `${f.namespace}.${f.id}` } },
              h('td', { class: 'sel-cell' }, h('input', { type: 'checkbox', class: 'sel', dataset: { key: `${f.namespace}/${f.id}` }, 'aria-label': `Select ${f.namespace}.${f.id}`, onchange: updateBulk })),
              h('td', null, h('a', { href: uiLinkFlow(f.namespace, f.id) }, f.id), f.disabled ? h('span', { class: 'chip' }, ' disabled') : null),
              h('td', null, f.namespace),
              h('td', { class: 'last-exec nowrap', dataset: { key: `${f.namespace}/${f.id}` } }, h('span', { class: 'muted' }, '…')),
              h('td', { class: 'hide-sm' }, f.revision ?? ''),
              h('td', { class: 'hide-sm' }, labelChips(f.labels)),
              h('td', { class: 'hide-sm muted' }, (f.description || '').split('\n')[0])))))),
          pager(state.page, SIZE, data.total, (p) => { state.page = p; load(); }));
        lastExecutions(flows, my);
      }
    } catch (e) {
      if (my === seq && alive) replace(results, errorBox(e, 'Could not load flows'));
    } finally {
      results.setAttribute('aria-busy', 'false');
    }
  }
  load();
  return () => { alive = false; };
}
